import { fork } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RunCallbacks } from '@posttrain/training';
import type { Logger } from '@posttrain/telemetry';
import type { RunJob, RunJobResult } from './run-job';
import type { FromWorker, ToWorker } from './run-worker';

export interface ForkRunWorkerOptions {
  signal: AbortSignal;
  callbacks: RunCallbacks;
  logger: Logger;
  /** After a cancel, how long the worker may take to stop at a step boundary before it is killed. */
  cancelGraceMs?: number;
}

/**
 * Runs a job in a child process (run-worker.ts) and relays its events. The
 * Trainer's event loop only forwards messages, so its API stays responsive
 * however long a step takes. Rejects, naming the exit code or signal, when
 * the worker dies before reporting an outcome.
 */
export function forkRunWorker(runId: string, job: RunJob, options: ForkRunWorkerOptions): Promise<RunJobResult> {
  const { signal, callbacks, logger } = options;
  // The worker is TypeScript like the service itself: tsx is loaded from here, so any cwd works.
  const child = fork(join(__dirname, 'run-worker.ts'), [], {
    execArgv: ['--import', pathToFileURL(require.resolve('tsx')).href],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  logger.info('run worker started', { run_id: runId, worker_pid: child.pid });
  return new Promise<RunJobResult>((resolve, reject) => {
    let outcome: { result: RunJobResult } | { error: Error } | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      if (child.connected) child.send({ type: 'cancel' } satisfies ToWorker);
      killTimer = setTimeout(() => {
        logger.warn('run worker did not stop after cancel, killing it', { run_id: runId, worker_pid: child.pid });
        child.kill('SIGKILL');
      }, options.cancelGraceMs ?? 60_000);
      killTimer.unref();
    };
    child.on('message', (msg: FromWorker) => {
      switch (msg.type) {
        case 'step':
          callbacks.onStep?.({ step: msg.step, totalSteps: msg.totalSteps, metrics: msg.metrics, skipped: msg.skipped, at: msg.at, samples: msg.samples });
          break;
        case 'eval':
          callbacks.onEval?.({ step: msg.step, metrics: msg.metrics });
          break;
        case 'checkpoint':
          callbacks.onCheckpoint?.({ step: msg.step, path: msg.path });
          break;
        case 'done':
          outcome = { result: msg.result };
          break;
        case 'error':
          outcome = { error: new Error(msg.message) };
          break;
      }
    });
    child.on('error', (err) => {
      outcome ??= { error: new Error(`run worker could not start: ${err.message}`) };
    });
    child.on('exit', (code, sig) => {
      signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (outcome && 'result' in outcome) return resolve(outcome.result);
      if (outcome) return reject(outcome.error);
      reject(new Error(`run worker (pid ${child.pid}) exited ${sig ? `on signal ${sig}` : `with code ${code}`} before the run finished; resume the run to continue from its last checkpoint`));
    });
    child.send({ type: 'start', runId, job } satisfies ToWorker);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}
