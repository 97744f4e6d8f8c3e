/**
 * A DashboardSource held in memory, for work that runs in-process rather
 * than through the Trainer service (the demo's pipeline): runs are started,
 * stepped and ended by calls, and each call records the RunEvent the
 * Trainer's registry would (state changes, metrics, samples, finished).
 */
import { Run, RunEvent, RunState } from '@posttrain/proto';
import type { DashboardSource } from './dashboard-server';

/** One generation with its reward, as StepEvent.samples carries it. */
export interface SampleText {
  prompt: string;
  completion: string;
  reward: number;
}

/** Events kept per run at most (the oldest dropped past it): a long run stays bounded in memory. */
const MAX_EVENTS_PER_RUN = 20_000;

interface Entry {
  run: Run;
  stage: string;
  events: RunEvent[];
  sequence: number;
}

export class MemoryRunSource implements DashboardSource {
  private readonly runs = new Map<string, Entry>();
  private readonly listeners = new Set<(e: RunEvent) => void>();

  list(): Run[] {
    return [...this.runs.values()].map((e) => e.run).reverse();
  }

  get(id: string): Run | undefined {
    return this.runs.get(id)?.run;
  }

  events(id: string, after: number): RunEvent[] {
    return (this.runs.get(id)?.events ?? []).filter((e) => e.sequence > after);
  }

  subscribe(listener: (e: RunEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stageOf(run: Run): string {
    return this.runs.get(run.id)?.stage ?? '';
  }

  /** Starts run `id` (RUNNING at once); a run of that id that already exists is an error. */
  start(id: string, stage: string, name = id): void {
    if (this.runs.has(id)) throw new Error(`run ${JSON.stringify(id)} already exists in the dashboard`);
    const now = new Date();
    const run = Run.fromPartial({ id, name, state: RunState.RUNNING, createTime: now, startTime: now });
    this.runs.set(id, { run, stage, events: [], sequence: 0 });
    this.emit(id, { $case: 'stateChanged', value: RunState.RUNNING });
  }

  /** Records a step's metrics, then its samples (if any), as the Trainer's registry does. */
  step(id: string, step: number, totalSteps: number, metrics: Record<string, number>, samples: readonly SampleText[] = []): void {
    const { run } = this.entry(id);
    run.lastStep = step;
    run.totalSteps = totalSteps;
    run.metricsSummary = { ...run.metricsSummary, ...metrics };
    this.emit(id, { $case: 'metrics', value: { step, epoch: 0, samples: 0, tokens: 0, split: 'train', values: metrics } });
    if (samples.length > 0) this.emit(id, { $case: 'samples', value: { step, samples: samples.map((s) => ({ ...s })) } });
  }

  /** Ends run `id`: SUCCEEDED, or FAILED / CANCELLED with a message. */
  finish(id: string, state: RunState.SUCCEEDED | RunState.FAILED | RunState.CANCELLED, errorMessage = '', metrics: Record<string, number> = {}): void {
    const { run } = this.entry(id);
    run.state = state;
    run.endTime = new Date();
    run.errorMessage = errorMessage;
    run.metricsSummary = { ...run.metricsSummary, ...metrics };
    this.emit(id, { $case: 'finished', value: { state, errorMessage, finalStep: run.lastStep, metricsSummary: run.metricsSummary, finalCheckpoint: undefined } });
  }

  private entry(id: string): Entry {
    const e = this.runs.get(id);
    if (!e) throw new Error(`run ${JSON.stringify(id)} was not started in the dashboard`);
    return e;
  }

  private emit(id: string, event: RunEvent['event']): void {
    const entry = this.entry(id);
    const e: RunEvent = { sequence: ++entry.sequence, runId: id, time: new Date(), event };
    entry.events.push(e);
    if (entry.events.length > MAX_EVENTS_PER_RUN) entry.events.shift();
    for (const l of [...this.listeners]) l(e);
  }
}
