/**
 * Lanes: how many of the pipeline's stages run at once. A stage holds a lane
 * while it runs; the next stage waiting (first come, first served) gets the
 * lane it frees. With one lane every job runs in the pipeline's own thread,
 * one after another. With more, each compute job (stage-jobs.ts) runs in a
 * worker thread of a small pool, one per lane at most, so stages that do not
 * depend on each other (GRPO from base beside SFT; DPO, the reward model and
 * GRPO from SFT after it) use separate cores. An RL stage holds a lane too:
 * its compute runs in the service processes it starts, and only its prompt
 * filter in a worker. A job's numbers do not depend on its lane: every stage
 * is seeded by its own config, and a worker loads the backend the pipeline's
 * thread runs.
 */
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { getBackendInfo } from '@posttrain/backend';
import type { Logger } from '@posttrain/telemetry';
import { PipelineCancelledError } from './pipeline-types';
import { runStageJob } from './stage-jobs';
import type { JobStep, StageJob, StageJobResult } from './stage-jobs';
import type { FromWorker, StageWorkerData, ToWorker } from './stage-worker';

export interface StageLanesOptions {
  /** Stages at once (>= 1). */
  lanes: number;
  signal?: AbortSignal;
  /** The log of jobs run in this thread (workers log warnings to stderr). */
  logger?: Logger;
}

interface PendingJob {
  stage: string;
  onStep?: (e: JobStep) => void;
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
}

/** One worker thread and the job it runs (at most one at a time). */
class StageWorker {
  private readonly worker: Worker;
  private pending: { id: number; job: PendingJob } | null = null;
  private failure: Error | null = null;

  constructor(backend: string) {
    const entry = join(__dirname, 'stage-worker.ts');
    // The project runs its TypeScript through tsx; a worker starts with a fresh module loader, so it registers tsx itself.
    this.worker = new Worker(`require('tsx/cjs'); require(${JSON.stringify(entry)});`, { eval: true, workerData: { backend } satisfies StageWorkerData });
    this.worker.on('message', (m: FromWorker) => this.onMessage(m));
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`stage worker exited (code ${code})`)));
  }

  run(id: number, job: StageJob, pending: PendingJob): void {
    if (this.failure) {
      pending.reject(this.failure);
      return;
    }
    this.pending = { id, job: pending };
    this.worker.postMessage({ type: 'job', id, job } satisfies ToWorker);
  }

  cancel(): void {
    if (this.pending) this.worker.postMessage({ type: 'cancel', id: this.pending.id } satisfies ToWorker);
  }

  get broken(): boolean {
    return this.failure !== null;
  }

  async terminate(): Promise<void> {
    this.failure ??= new Error('stage worker terminated');
    await this.worker.terminate();
  }

  private onMessage(m: FromWorker): void {
    const p = this.pending;
    if (!p || p.id !== m.id) return;
    if (m.type === 'step') {
      p.job.onStep?.({ step: m.step, totalSteps: m.totalSteps, metrics: m.metrics });
      return;
    }
    this.pending = null;
    if (m.type === 'done') p.job.resolve(m.result);
    else if (m.cancelled) p.job.reject(new PipelineCancelledError(p.job.stage));
    else {
      const e = new Error(m.message);
      e.stack = m.stack;
      p.job.reject(e);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const p = this.pending;
    this.pending = null;
    p?.job.reject(e);
  }
}

export class StageLanes {
  readonly lanes: number;
  private free: number;
  private readonly waiting: (() => void)[] = [];
  private readonly idle: StageWorker[] = [];
  private readonly busy = new Set<StageWorker>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: StageLanesOptions) {
    if (!Number.isInteger(options.lanes) || options.lanes < 1) throw new Error(`lanes: got ${JSON.stringify(options.lanes)}, expected a positive integer`);
    this.lanes = options.lanes;
    this.free = options.lanes;
    options.signal?.addEventListener('abort', () => this.busy.forEach((w) => w.cancel()), { once: true });
  }

  /** Runs `fn` holding a lane, waiting for one first. */
  async hold<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }

  /** Runs a job in a lane of its own. */
  run<J extends StageJob>(stage: string, job: J, onStep?: (e: JobStep) => void): Promise<StageJobResult<J>> {
    return this.hold(() => this.runHeld(stage, job, onStep));
  }

  /** Runs a job inside a lane its caller already holds (an RL stage's prompt filter). */
  async runHeld<J extends StageJob>(stage: string, job: J, onStep?: (e: JobStep) => void): Promise<StageJobResult<J>> {
    if (this.closed) throw new Error('stage lanes are closed');
    if (this.options.signal?.aborted) throw new PipelineCancelledError(stage);
    if (this.lanes === 1) return runStageJob(job, { signal: this.options.signal, logger: this.options.logger, onStep });
    const worker = this.idle.pop() ?? new StageWorker(getBackendInfo()?.name ?? 'auto');
    this.busy.add(worker);
    try {
      return (await new Promise<unknown>((resolve, reject) => worker.run(this.nextId++, job, { stage, onStep, resolve, reject }))) as StageJobResult<J>;
    } finally {
      this.busy.delete(worker);
      if (worker.broken || this.closed) void worker.terminate();
      else this.idle.push(worker);
    }
  }

  /** Ends the worker threads (idle ones; busy ones as their jobs end). */
  async close(): Promise<void> {
    this.closed = true;
    const idle = this.idle.splice(0);
    await Promise.all(idle.map((w) => w.terminate()));
  }
}
