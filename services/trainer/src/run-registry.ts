import { existsSync, readdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { LogLevel, Run, RunEvent, RunState, type RunSpec, type Checkpoint } from '@posttrain/proto';
import type { RunCallbacks } from '@posttrain/training';
import type { Logger } from '@posttrain/telemetry';

/** What executes a run: an offline stage (libs/training) or an online one (libs/rl). */
export interface RunExecutor {
  stage: string;
  outputDir: string;
  execute(options: { signal: AbortSignal; callbacks: RunCallbacks; logger: Logger }): Promise<{ status: 'completed' | 'cancelled'; runDir: string; lastMetrics: Record<string, number>; lastEval?: Record<string, number> | null }>;
}

interface RunRecord {
  run: Run;
  executor: RunExecutor;
  events: RunEvent[];
  controller: AbortController;
  listeners: Set<() => void>;
}

const FINISHED = new Set([RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED]);
export const isFinished = (s: RunState): boolean => FINISHED.has(s);

/**
 * The runs this trainer owns. Runs execute one at a time, in the order they
 * were started (training saturates the CPU); each keeps its event history for
 * WatchRun replay, and a finished run's record is written to
 * runs/<id>/run.json so a restarted trainer still lists it.
 */
export class RunRegistry {
  private readonly runs = new Map<string, RunRecord>();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly runsDir: string,
    private readonly log: Logger,
  ) {
    this.loadFinished();
  }

  private loadFinished(): void {
    if (!existsSync(this.runsDir)) return;
    for (const id of readdirSync(this.runsDir)) {
      const file = join(this.runsDir, id, 'run.json');
      if (!existsSync(file)) continue;
      try {
        const run = Run.fromJSON(JSON.parse(readFileSync(file, 'utf8')));
        this.runs.set(run.id, { run, executor: { stage: 'finished', outputDir: run.outputDir, execute: () => Promise.reject(new Error('finished run')) }, events: [], controller: new AbortController(), listeners: new Set() });
      } catch (err) {
        this.log.warn('skipping an unreadable run record', { file, err });
      }
    }
  }

  get(id: string): Run | undefined {
    return this.runs.get(id)?.run;
  }

  has(id: string): boolean {
    return this.runs.has(id);
  }

  isActive(id: string): boolean {
    const r = this.runs.get(id);
    return r !== undefined && !isFinished(r.run.state);
  }

  /** Newest first. */
  list(state?: RunState): Run[] {
    return [...this.runs.values()]
      .map((r) => r.run)
      .filter((r) => state === undefined || r.state === state)
      .sort((a, b) => (b.createTime?.getTime() ?? 0) - (a.createTime?.getTime() ?? 0) || b.id.localeCompare(a.id));
  }

  /** Events with sequence > after, and a way to wait for more. */
  events(id: string, after: number): RunEvent[] {
    return (this.runs.get(id)?.events ?? []).filter((e) => e.sequence > after);
  }

  /** Resolves at the next event of run `id` (or when `signal` aborts). */
  nextEvent(id: string, signal: AbortSignal): Promise<void> {
    const rec = this.runs.get(id);
    if (!rec) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        rec.listeners.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      rec.listeners.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private emit(rec: RunRecord, event: Omit<RunEvent, 'sequence' | 'runId' | 'time'>): void {
    rec.events.push(RunEvent.fromPartial({ ...event, sequence: rec.events.length + 1, runId: rec.run.id, time: new Date() }));
    for (const l of [...rec.listeners]) l();
  }

  private setState(rec: RunRecord, state: RunState): void {
    rec.run.state = state;
    this.emit(rec, { event: { $case: 'stateChanged', value: state } });
  }

  /** Queues a validated run; it starts when the runs before it have finished. */
  start(id: string, spec: RunSpec, executor: RunExecutor): Run {
    const run = Run.fromPartial({ id, name: spec.name || id, state: RunState.PENDING, spec, createTime: new Date(), outputDir: join(executor.outputDir, id) });
    const rec: RunRecord = { run, executor, events: [], controller: new AbortController(), listeners: new Set() };
    this.runs.set(id, rec);
    this.emit(rec, { event: { $case: 'stateChanged', value: RunState.PENDING } });
    this.queue = this.queue.then(() => this.execute(rec));
    return run;
  }

  private async execute(rec: RunRecord): Promise<void> {
    const { run } = rec;
    if (rec.controller.signal.aborted) return this.finish(rec, RunState.CANCELLED, '');
    run.startTime = new Date();
    this.setState(rec, RunState.RUNNING);
    this.log.info('run started', { run_id: run.id, stage: rec.executor.stage });
    try {
      const result = await rec.executor.execute({
        signal: rec.controller.signal,
        logger: this.log.child({ run_id: run.id }),
        callbacks: {
          onStep: (e) => {
            run.lastStep = e.step;
            run.totalSteps = e.totalSteps;
            this.emit(rec, { event: { $case: 'metrics', value: { step: e.step, epoch: 0, samples: 0, tokens: 0, split: 'train', values: e.metrics } } });
          },
          onEval: (e) => this.emit(rec, { event: { $case: 'metrics', value: { step: e.step, epoch: 0, samples: 0, tokens: 0, split: 'eval', values: e.metrics } } }),
          onCheckpoint: (e) => {
            const cp: Checkpoint = { path: e.path, step: e.step, time: new Date() };
            run.lastCheckpoint = cp;
            this.emit(rec, { event: { $case: 'checkpoint', value: cp } });
          },
        },
      });
      run.metricsSummary = { ...result.lastMetrics, ...Object.fromEntries(Object.entries(result.lastEval ?? {}).map(([k, v]) => [`eval/${k.replace(/^eval\//, '')}`, v])) };
      run.outputDir = result.runDir;
      this.finish(rec, result.status === 'completed' ? RunState.SUCCEEDED : RunState.CANCELLED, '');
    } catch (err) {
      this.log.error('run failed', { run_id: run.id, err });
      this.finish(rec, RunState.FAILED, (err as Error).message);
    }
  }

  private finish(rec: RunRecord, state: RunState, error: string): void {
    const { run } = rec;
    run.endTime = new Date();
    run.errorMessage = error;
    this.setState(rec, state);
    this.emit(rec, { event: { $case: 'finished', value: { state, errorMessage: error, finalStep: run.lastStep, metricsSummary: run.metricsSummary, finalCheckpoint: run.lastCheckpoint } } });
    if (existsSync(run.outputDir)) {
      const file = join(run.outputDir, 'run.json');
      writeFileSync(`${file}.tmp`, JSON.stringify(Run.toJSON(run), null, 2));
      renameSync(`${file}.tmp`, file);
    }
    this.log.info('run finished', { run_id: run.id, state: RunState[state], step: run.lastStep, error: error || undefined });
  }

  /** Stops a run at its next step boundary (a pending one at once); finished runs are unchanged. */
  cancel(id: string, reason: string): Run | undefined {
    const rec = this.runs.get(id);
    if (!rec) return undefined;
    if (!isFinished(rec.run.state)) {
      this.emit(rec, { event: { $case: 'log', value: { level: LogLevel.WARN, message: `cancel requested${reason ? `: ${reason}` : ''}` } } });
      rec.controller.abort();
    }
    return rec.run;
  }

  /** Waits for every queued run (used at shutdown after cancelling). */
  async drain(): Promise<void> {
    for (const rec of this.runs.values()) if (!isFinished(rec.run.state)) rec.controller.abort();
    await this.queue;
  }
}
