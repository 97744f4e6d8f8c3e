/**
 * The run harness: what every stage (lm, sft, rm, dpo, ppo, grpo) does the
 * same way, so that a stage supplies only its step and what it checkpoints.
 *
 *   open    run id (<stage>-<UTC timestamp> unless given), <output_dir>/<run_id>/,
 *           config.json (the resolved config), resume from the newest checkpoint
 *           (its trainer_state.json, stage checked), metrics.jsonl + TensorBoard
 *           sinks (metrics.jsonl cut back to the checkpoint's step on resume)
 *   drive   steps numbered from 1 until totalSteps or the AbortSignal (checked at
 *           step boundaries); each step's metrics to the sinks every
 *           log_every_steps (and on the first, the last and skipped steps), the
 *           onStep callback, a checkpoint every checkpoint_every_steps
 *   skips   non-finite updates counted; more than max_consecutive_skips in a row
 *           stop the run with a TrainingError
 *   save    checkpoints/step-N written atomically (several models and optimizers),
 *           oldest pruned beyond keep_checkpoints
 *   finish  report.html, sinks closed
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger, MetricsSink } from '@posttrain/telemetry';
import { JsonlMetricsSink, TensorBoardMetricsSink, fanOutMetricsSinks, truncateMetricsJsonl, writeRunReport } from '@posttrain/telemetry';
import type { GenerationSample } from './generation-samples';
import { boundGenerationSamples } from './generation-samples';
import type { CheckpointContents, TrainerState } from './train-checkpoint';
import { checkpointsDir, listCheckpoints, pruneCheckpoints, readTrainerState, saveCheckpoint } from './train-checkpoint';

export interface StepEvent {
  step: number;
  totalSteps: number;
  /** This step's metrics (train/loss, train/grad_norm, train/learning_rate, stage metrics). */
  metrics: Record<string, number>;
  skipped: boolean;
  /** When the step ended (ms since the epoch), so that a consumer in another process can time its delivery. */
  at?: number;
  /** A few of the step's generations with their rewards (online stages), bounded as in generation-samples.ts. */
  samples?: GenerationSample[];
}

export interface RunCallbacks {
  onStep?(e: StepEvent): void;
  onEval?(e: { step: number; metrics: Record<string, number> }): void;
  onCheckpoint?(e: { step: number; path: string }): void;
}

/** Error that stops a run (too many skipped updates, missing data, nothing to resume). */
export class TrainingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingError';
  }
}

/** A run id from the time: 20261202-013000. */
export function timestampId(date = new Date()): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}

export interface RunHarnessSettings {
  /** Stage name: names generated run ids, and a resumed checkpoint must be of it. */
  stage: TrainerState['stage'];
  /** null: <stage>-<UTC timestamp>. */
  runId: string | null;
  outputDir: string;
  resume: boolean;
  /** The resolved config as config.json holds it, given the run id. */
  configSnapshot(runId: string): Record<string, unknown>;
  /** Checkpoints kept (oldest removed); null keeps all. */
  keepCheckpoints: number | null;
  logger: Logger;
  callbacks?: RunCallbacks;
  signal?: AbortSignal;
}

/** One step's outcome as the stage reports it to the harness. */
export interface StepOutcome {
  metrics: Record<string, number>;
  /** The step changed no weights (a non-finite update, no usable rollouts). */
  skipped: boolean;
  /** A few of the step's generations with their rewards (online stages). */
  samples?: GenerationSample[];
}

export interface StageLoop {
  totalSteps: number;
  logEverySteps: number;
  /** null or 0: checkpoints at the end only. */
  checkpointEverySteps: number | null;
  /** Runs step `step` (1-based). */
  runStep(step: number): Promise<StepOutcome>;
  /** After the step's metrics are written (progress, evaluation). */
  afterStep?(step: number, outcome: StepOutcome, logStep: boolean): Promise<void> | void;
  /** Writes a checkpoint of the state after `step`. */
  checkpoint(step: number): Promise<void>;
}

/** Counts updates skipped for a non-finite loss or gradient, and stops the run after too many in a row. */
export class SkipCounter {
  constructor(
    /** Skipped updates in a row, up to now. */
    public consecutive: number,
    /** Skipped updates in the whole run. */
    public total: number,
    private readonly maxConsecutive: number,
  ) {}

  /** Records one update; `explain(consecutive)` is the message when the run must stop. */
  record(skipped: boolean, explain: (consecutive: number) => string): void {
    if (!skipped) {
      this.consecutive = 0;
      return;
    }
    this.consecutive++;
    this.total++;
    if (this.consecutive > this.maxConsecutive) throw new TrainingError(explain(this.consecutive));
  }
}

export class RunHarness {
  /** The newest checkpoint directory when resuming, else null. */
  readonly resumeFrom: string | null;
  /** Its trainer state. */
  readonly resumedState: TrainerState | null;
  /** The last completed step (the resumed one at first). */
  step: number;
  private sink: MetricsSink | null = null;
  private closed = false;
  private lastSavedStep: number;

  private constructor(
    readonly settings: RunHarnessSettings,
    readonly runId: string,
    readonly runDir: string,
    readonly config: Record<string, unknown>,
    resume: { path: string; state: TrainerState } | null,
  ) {
    this.resumeFrom = resume?.path ?? null;
    this.resumedState = resume?.state ?? null;
    this.step = resume?.state.step ?? 0;
    this.lastSavedStep = resume ? this.step : -1;
  }

  /** Creates (or, to resume, finds) the run directory and writes config.json. */
  static async open(settings: RunHarnessSettings): Promise<RunHarness> {
    const runId = settings.runId ?? `${settings.stage}-${timestampId()}`;
    const runDir = resolve(settings.outputDir, runId);
    const checkpoints = await listCheckpoints(runDir);
    if (settings.resume && checkpoints.length === 0) throw new TrainingError(`resume: no checkpoint to resume from in ${checkpointsDir(runDir)}`);
    if (!settings.resume && existsSync(join(runDir, 'metrics.jsonl'))) {
      throw new TrainingError(`run_id: ${runDir} already holds a run; set resume: true to continue it, or choose another run_id`);
    }
    let resume: { path: string; state: TrainerState } | null = null;
    if (settings.resume) {
      const path = checkpoints[checkpoints.length - 1].path;
      const state = await readTrainerState(path);
      if (state.stage !== settings.stage) throw new TrainingError(`resume: checkpoint ${path} is of stage ${state.stage}, this run is ${settings.stage}`);
      resume = { path, state };
    }
    await mkdir(runDir, { recursive: true });
    const config = settings.configSnapshot(runId);
    await writeFile(join(runDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    return new RunHarness(settings, runId, runDir, config, resume);
  }

  /** The metrics sinks (metrics.jsonl cut back to the resumed step, TensorBoard events). */
  get metrics(): MetricsSink {
    if (this.closed) throw new Error(`run ${this.runId}: metrics written after the run finished`);
    if (this.sink === null) {
      const path = join(this.runDir, 'metrics.jsonl');
      if (this.resumedState) truncateMetricsJsonl(path, this.resumedState.step);
      this.sink = fanOutMetricsSinks([new JsonlMetricsSink(path), new TensorBoardMetricsSink(this.runDir)]);
    }
    return this.sink;
  }

  /** A skip counter that continues the resumed run's counts. */
  skipCounter(maxConsecutive: number): SkipCounter {
    return new SkipCounter(this.resumedState?.consecutiveSkips ?? 0, this.resumedState?.skippedSteps ?? 0, maxConsecutive);
  }

  /**
   * Runs steps until totalSteps or cancellation. Returns 'cancelled' when the signal
   * stopped it at a step boundary, and the metrics of the last step.
   */
  async drive(loop: StageLoop): Promise<{ status: 'completed' | 'cancelled'; lastMetrics: Record<string, number> }> {
    const { logger, callbacks, signal } = this.settings;
    let lastMetrics: Record<string, number> = {};
    while (this.step < loop.totalSteps) {
      if (signal?.aborted) {
        logger.info('cancelled at a step boundary', { step: this.step, lastCheckpoint: this.lastSavedStep });
        return { status: 'cancelled', lastMetrics };
      }
      const step = this.step + 1;
      const outcome = await loop.runStep(step);
      this.step = step;
      lastMetrics = outcome.metrics;
      const logStep = step % loop.logEverySteps === 0 || step === loop.totalSteps || step === 1;
      if (logStep || outcome.skipped) this.metrics.write(step, outcome.metrics);
      callbacks?.onStep?.({ step, totalSteps: loop.totalSteps, metrics: outcome.metrics, skipped: outcome.skipped, at: Date.now(), ...(outcome.samples?.length ? { samples: boundGenerationSamples(outcome.samples) } : {}) });
      await loop.afterStep?.(step, outcome, logStep);
      const every = loop.checkpointEverySteps ?? 0;
      if (every > 0 && step % every === 0 && step !== loop.totalSteps) await loop.checkpoint(step);
    }
    return { status: 'completed', lastMetrics };
  }

  /** Whether the state after the current step is not yet in a checkpoint. */
  get unsaved(): boolean {
    return this.lastSavedStep !== this.step;
  }

  /** Writes checkpoints/step-N atomically, prunes old ones, tells the callback. */
  async saveCheckpoint(contents: CheckpointContents): Promise<string> {
    const path = await saveCheckpoint(this.runDir, contents);
    this.lastSavedStep = contents.state.step;
    await pruneCheckpoints(this.runDir, this.settings.keepCheckpoints);
    this.settings.callbacks?.onCheckpoint?.({ step: contents.state.step, path });
    this.settings.logger.info('checkpoint', { step: contents.state.step, path });
    return path;
  }

  /** Closes the sinks and writes report.html. */
  finish(report: { title: string; summary: Record<string, string | number> }): void {
    this.close();
    writeRunReport(this.runDir, { ...report, config: this.config });
  }

  /** Closes the sinks (also after an error). */
  close(): void {
    this.sink?.close();
    this.sink = null;
    this.closed = true;
  }
}
