import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { LogLevel, Run, RunEvent, RunState, type RunSpec, type Checkpoint } from '@posttrain/proto';
import type { RunCallbacks } from '@posttrain/training';
import { boundGenerationSamples } from '@posttrain/training';
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
  /** When run.json was last written while steps were coming in. */
  savedAt: number;
}

const FINISHED = new Set([RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.INTERRUPTED]);
/** No longer active: finished, or interrupted by a trainer restart (resumable). */
export const isFinished = (s: RunState): boolean => FINISHED.has(s);

/** Error messages stored and sent are capped: a run's failure must not carry megabytes (or a data file) to every ListRuns. */
const MAX_ERROR_CHARS = 2000;
const capMessage = (m: string): string => (m.length > MAX_ERROR_CHARS ? `${m.slice(0, MAX_ERROR_CHARS)}... (${m.length - MAX_ERROR_CHARS} more characters)` : m);
const RECORD_EVERY_MS = 1000;

const noExecutor = (outputDir: string): RunExecutor => ({ stage: 'loaded', outputDir, execute: () => Promise.reject(new Error('a run loaded from disk is resumed with StartRun(resume)')) });

/**
 * Reads an events.jsonl history. A torn last line (the trainer died while
 * appending) is dropped with a warning; a bad line before the end stops
 * the history there, naming the file and line.
 */
export function readEventHistory(file: string, log: Logger): RunEvent[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  const events: RunEvent[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    try {
      const e = RunEvent.fromJSON(JSON.parse(lines[i]));
      if (e.sequence !== events.length + 1) throw new Error(`sequence ${e.sequence}, expected ${events.length + 1}`);
      events.push(e);
    } catch (err) {
      const last = lines.slice(i + 1).every((l) => l.trim() === '');
      log.warn(last ? 'dropping a torn last line of a run history' : 'run history is damaged; keeping the events before this line', { file, line: i + 1, err: (err as Error).message });
      break;
    }
  }
  return events;
}

/**
 * The runs this trainer owns. Runs execute one at a time, in the order they
 * were started (training saturates the CPU); each keeps its event history for
 * WatchRun replay. Both are durable: runs/<id>/run.json (rewritten on every
 * state change and checkpoint, and at most once a second between steps) and
 * runs/<id>/events.jsonl (appended per event). A restarted trainer lists
 * every run again; one that was active is marked INTERRUPTED, resumable with
 * StartRun(resume), and its WatchRun history continues where it stopped.
 */
export class RunRegistry {
  private readonly runs = new Map<string, RunRecord>();
  private readonly subscribers = new Set<(e: RunEvent) => void>();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly runsDir: string,
    private readonly log: Logger,
  ) {
    this.loadRecords();
  }

  private recordDir(id: string): string {
    return join(this.runsDir, id);
  }

  private loadRecords(): void {
    if (!existsSync(this.runsDir)) return;
    for (const id of readdirSync(this.runsDir)) {
      const file = join(this.runsDir, id, 'run.json');
      if (!existsSync(file)) continue;
      let run: Run;
      try {
        run = Run.fromJSON(JSON.parse(readFileSync(file, 'utf8')));
      } catch (err) {
        this.log.warn('skipping an unreadable run record', { file, err });
        continue;
      }
      if (run.id !== id) {
        this.log.warn('skipping a run record whose id is not its directory', { file, id: run.id });
        continue;
      }
      const rec: RunRecord = { run, executor: noExecutor(run.outputDir), events: readEventHistory(join(this.runsDir, id, 'events.jsonl'), this.log), controller: new AbortController(), listeners: new Set(), savedAt: 0 };
      this.runs.set(run.id, rec);
      if (!isFinished(run.state)) {
        this.log.warn('run was active when the trainer stopped; marked INTERRUPTED', { run_id: id, step: run.lastStep, checkpoint: run.lastCheckpoint?.path });
        this.emit(rec, { event: { $case: 'log', value: { level: LogLevel.WARN, message: `the trainer stopped while this run was ${RunState[run.state].toLowerCase()}; StartRun with resume continues it from ${run.lastCheckpoint ? `the checkpoint of step ${run.lastCheckpoint.step}` : 'the start'}` } } });
        this.setState(rec, RunState.INTERRUPTED);
        this.save(rec);
      }
    }
  }

  /** Runs a restarted trainer found active (INTERRUPTED), oldest first. */
  interrupted(): Run[] {
    return this.list(RunState.INTERRUPTED).reverse();
  }

  private save(rec: RunRecord): void {
    const dir = this.recordDir(rec.run.id);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'run.json');
    writeFileSync(`${file}.tmp`, JSON.stringify(Run.toJSON(rec.run), null, 2));
    renameSync(`${file}.tmp`, file);
    rec.savedAt = Date.now();
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

  /** Appends an event to the run's history; `at` is when it happened (default: now). */
  private emit(rec: RunRecord, event: Omit<RunEvent, 'sequence' | 'runId' | 'time'>, at = new Date()): void {
    const e = RunEvent.fromPartial({ ...event, sequence: rec.events.length + 1, runId: rec.run.id, time: at });
    rec.events.push(e);
    try {
      const dir = this.recordDir(rec.run.id);
      mkdirSync(dir, { recursive: true });
      appendFileSync(join(dir, 'events.jsonl'), `${JSON.stringify(RunEvent.toJSON(e))}\n`);
    } catch (err) {
      this.log.warn('cannot append to a run history', { run_id: rec.run.id, err });
    }
    for (const l of [...rec.listeners]) l();
    for (const s of [...this.subscribers]) {
      try {
        s(e);
      } catch (err) {
        this.log.warn('a run event subscriber failed', { run_id: rec.run.id, err });
      }
    }
  }

  /** Calls `listener` with every event of every run as it is recorded (the events WatchRun streams); returns the unsubscribe. */
  subscribe(listener: (e: RunEvent) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  private setState(rec: RunRecord, state: RunState): void {
    rec.run.state = state;
    this.emit(rec, { event: { $case: 'stateChanged', value: state } });
    this.save(rec);
  }

  /**
   * Queues a validated run; it starts when the runs before it have finished.
   * A resumed run (same id, not active) keeps its record's history and
   * creation time, and its events continue the sequence.
   */
  start(id: string, spec: RunSpec, executor: RunExecutor): Run {
    const previous = this.runs.get(id);
    if (previous && !isFinished(previous.run.state)) throw new Error(`run ${id} is active`);
    const run = Run.fromPartial({ id, name: spec.name || id, state: RunState.PENDING, spec, createTime: previous?.run.createTime ?? new Date(), outputDir: join(executor.outputDir, id), lastStep: previous?.run.lastStep ?? 0, lastCheckpoint: previous?.run.lastCheckpoint });
    const rec: RunRecord = { run, executor, events: previous?.events ?? [], controller: new AbortController(), listeners: previous?.listeners ?? new Set(), savedAt: 0 };
    this.runs.set(id, rec);
    this.setState(rec, RunState.PENDING);
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
            run.metricsSummary = { ...run.metricsSummary, ...e.metrics };
            // The event's time is when the worker ended the step, so a watcher can time the delivery end to end.
            const at = e.at !== undefined ? new Date(e.at) : undefined;
            this.emit(rec, { event: { $case: 'metrics', value: { step: e.step, epoch: 0, samples: 0, tokens: 0, split: 'train', values: e.metrics } } }, at);
            // A few of the step's generations (online stages), after its metrics; bounded again here since they come from another process.
            if (e.samples?.length) this.emit(rec, { event: { $case: 'samples', value: { step: e.step, samples: boundGenerationSamples(e.samples) } } }, at);
            if (Date.now() - rec.savedAt >= RECORD_EVERY_MS) this.save(rec);
          },
          onEval: (e) => this.emit(rec, { event: { $case: 'metrics', value: { step: e.step, epoch: 0, samples: 0, tokens: 0, split: 'eval', values: e.metrics } } }),
          onCheckpoint: (e) => {
            const cp: Checkpoint = { path: e.path, step: e.step, time: new Date() };
            run.lastCheckpoint = cp;
            this.emit(rec, { event: { $case: 'checkpoint', value: cp } });
            this.save(rec);
          },
        },
      });
      run.metricsSummary = { ...result.lastMetrics, ...Object.fromEntries(Object.entries(result.lastEval ?? {}).map(([k, v]) => [`eval/${k.replace(/^eval\//, '')}`, v])) };
      run.outputDir = result.runDir;
      this.finish(rec, result.status === 'completed' ? RunState.SUCCEEDED : RunState.CANCELLED, '');
    } catch (err) {
      this.log.error('run failed', { run_id: run.id, err });
      this.finish(rec, RunState.FAILED, capMessage((err as Error).message));
    }
  }

  private finish(rec: RunRecord, state: RunState, error: string): void {
    const { run } = rec;
    run.endTime = new Date();
    run.errorMessage = error;
    this.setState(rec, state);
    this.emit(rec, { event: { $case: 'finished', value: { state, errorMessage: error, finalStep: run.lastStep, metricsSummary: run.metricsSummary, finalCheckpoint: run.lastCheckpoint } } });
    this.save(rec);
    this.log.info('run finished', { run_id: run.id, state: RunState[state], step: run.lastStep, error: error || undefined });
  }

  /** Stops a run at its next step boundary (a pending one at once); finished runs are unchanged. */
  cancel(id: string, reason: string): Run | undefined {
    const rec = this.runs.get(id);
    if (!rec) return undefined;
    if (!isFinished(rec.run.state)) {
      this.emit(rec, { event: { $case: 'log', value: { level: LogLevel.WARN, message: capMessage(`cancel requested${reason ? `: ${reason}` : ''}`) } } });
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
