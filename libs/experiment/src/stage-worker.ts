/**
 * The worker-thread side of stage-lanes.ts: initialises the backend the
 * pipeline's thread runs (same name; the process's native kernels are already
 * loaded), then runs the jobs it is sent one at a time with runStageJob,
 * posting training steps, the result, or the error back. A 'cancel' message
 * stops a training job at its next step boundary.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { getBackendInfo, initBackend } from '@posttrain/backend';
import { createLogger } from '@posttrain/telemetry';
import { runStageJob } from './stage-jobs';
import type { StageJob } from './stage-jobs';
import { PipelineCancelledError } from './pipeline-types';

export type ToWorker = { type: 'job'; id: number; job: StageJob } | { type: 'cancel'; id: number };
export type FromWorker =
  | { type: 'step'; id: number; step: number; totalSteps: number; metrics: Record<string, number> }
  | { type: 'done'; id: number; result: unknown }
  | { type: 'error'; id: number; cancelled: boolean; message: string; stack: string };

export interface StageWorkerData {
  backend: string;
}

if (parentPort) {
  const port = parentPort;
  const data = workerData as StageWorkerData;
  const logger = createLogger({ service: 'trainer', level: 'warn', sink: (line) => process.stderr.write(line + '\n') });
  const running = new Map<number, AbortController>();
  let ready: Promise<unknown> | null = null;
  port.on('message', (m: ToWorker) => {
    if (m.type === 'cancel') {
      running.get(m.id)?.abort();
      return;
    }
    const ac = new AbortController();
    running.set(m.id, ac);
    ready ??= getBackendInfo() === null ? initBackend({ backend: data.backend, logger: { info: () => undefined } }) : Promise.resolve();
    ready
      .then(() => runStageJob(m.job, { signal: ac.signal, logger, onStep: (e) => port.postMessage({ type: 'step', id: m.id, ...e } satisfies FromWorker) }))
      .then(
        (result) => port.postMessage({ type: 'done', id: m.id, result } satisfies FromWorker),
        (err: unknown) => {
          const e = err instanceof Error ? err : new Error(String(err));
          port.postMessage({ type: 'error', id: m.id, cancelled: e instanceof PipelineCancelledError, message: e.message, stack: e.stack ?? '' } satisfies FromWorker);
        },
      )
      .finally(() => running.delete(m.id));
  });
}
