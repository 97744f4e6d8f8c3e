/**
 * The run worker: one child process per run, so that training, which keeps
 * a CPU core busy between awaits, never blocks the Trainer's event loop
 * (its API, grpc.health and WatchRun stay live) and a crash of the run (out
 * of memory, a native abort) ends the run, not the Trainer.
 *
 * Protocol (IPC, structured clone), parent -> worker: `start` once, then
 * `cancel` at most once; worker -> parent: `step` (with a few generations
 * of an online step), `eval`, `checkpoint` events, then `done` or `error`.
 * The worker exits when its parent goes away (the IPC channel closes): a
 * run whose Trainer died is resumed from its last checkpoint, not continued
 * blind.
 */
import { createLogger, parseLogLevel, startTracingIfExported } from '@posttrain/telemetry';
import type { GenerationSample } from '@posttrain/training';
import { executeRunJob, type RunJob, type RunJobResult } from './run-job';

export type ToWorker = { type: 'start'; runId: string; job: RunJob } | { type: 'cancel' };
export type FromWorker =
  | { type: 'step'; step: number; totalSteps: number; metrics: Record<string, number>; skipped: boolean; at?: number; samples?: GenerationSample[] }
  | { type: 'eval'; step: number; metrics: Record<string, number> }
  | { type: 'checkpoint'; step: number; path: string }
  | { type: 'done'; result: RunJobResult }
  | { type: 'error'; message: string };

function send(msg: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

function main(): void {
  if (!process.send) {
    process.stderr.write('run-worker: start me with child_process.fork (the Trainer does)\n');
    process.exit(2);
  }
  const controller = new AbortController();
  let started = false;
  process.on('disconnect', () => process.exit(1));
  process.on('message', (msg: ToWorker) => {
    if (msg.type === 'cancel') return controller.abort();
    if (msg.type !== 'start' || started) return;
    started = true;
    const tracing = startTracingIfExported('posttrain-trainer-run');
    const logger = createLogger({ service: 'trainer', level: parseLogLevel(process.env.POSTTRAIN_LOG_LEVEL ?? 'info'), fields: { run_id: msg.runId, worker_pid: process.pid } });
    executeRunJob(msg.job, {
      signal: controller.signal,
      logger,
      callbacks: {
        onStep: (e) => void send({ type: 'step', ...e }),
        onEval: (e) => void send({ type: 'eval', ...e }),
        onCheckpoint: (e) => void send({ type: 'checkpoint', ...e }),
      },
    })
      .then(
        (result) => send({ type: 'done', result: { status: result.status, runDir: result.runDir, lastMetrics: result.lastMetrics, lastEval: result.lastEval ?? null } }),
        (err: Error) => send({ type: 'error', message: err?.message ?? String(err) }),
      )
      .then(() => tracing?.shutdown())
      .then(() => process.exit(0));
  });
}

if (require.main === module) main();
