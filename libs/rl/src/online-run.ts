/**
 * What PPO and GRPO share around their algorithm: the run harness (run id,
 * resume, metrics, checkpoints, report), the prompt loader, the policy (and
 * PPO's critic) with their AdamW optimizers and schedule, the KL controller,
 * the minibatch RNG, the sampler pool with its weight pushes, and the
 * reference and reward services behind their interfaces.
 *
 * A checkpoint holds both models, both optimizers, the RNG, the data
 * position, the KL controller and the sampler weights version, so a resumed
 * run repeats the uninterrupted one.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KlController } from '@posttrain/algorithms';
import { AdaptiveKlController, FixedKlController, klControllerFromState } from '@posttrain/algorithms';
import { getBackendInfo, initBackend } from '@posttrain/backend';
import type { DataPosition } from '@posttrain/data';
import { IndexedDataFile, createPromptLoader, parseDataConfig } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { loadModel, modelToHfTensors, saveModel, withScoreHead } from '@posttrain/model';
import { Rng } from '@posttrain/random';
import { serializeSafetensors } from '@posttrain/safetensors';
import type { Logger } from '@posttrain/telemetry';
import { createLogger, withSpan } from '@posttrain/telemetry';
import { loadTokenizer } from '@posttrain/tokenizer';
import type { LrSchedule, NamedVariable, RunCallbacks, StepOutcome } from '@posttrain/training';
import { AdamW, RunHarness, SkipCounter, TrainingError, readOptimizerTensors, warmupStepsFor } from '@posttrain/training';
import { PtxMix } from './ptx-mix';
import type { RlRunConfig } from './rl-run-config';
import { RlConfigError } from './rl-run-config';
import type { SamplerPoolEvent, SamplerPoolOptions, WeightsPushResult } from './rollout-types';
import { RolloutLedger } from './rollout-ledger';
import { RolloutQueue } from './rollout-queue';
import { AddressSourceError, samplerAddressSource } from './sampler-addresses';
import { SamplerPool } from './sampler-pool';
import type { ReferenceLogProbs, RewardScorer } from './service-clients';
import { referenceServiceClient, rewardServiceClient } from './service-clients';

export interface RunRlOptions {
  /** Cancels the run at the next step boundary; a final checkpoint is written. */
  signal?: AbortSignal;
  /** Same shape as the offline stage runner's (onStep, onCheckpoint). */
  callbacks?: RunCallbacks;
  logger?: Logger;
  /** Sampler pool tuning (timeouts, in-flight requests). */
  pool?: SamplerPoolOptions;
  /**
   * How long calls to the reference and reward services retry UNAVAILABLE
   * (with backoff) before the run fails (ms): a restarting pod is waited for.
   * Default 60 000.
   */
  serviceRetryMs?: number;
  /** Rows per forward pass outside the minibatch updates (old log-probs, values); default 16. */
  forwardChunk?: number;
  /** Most updates in a row with a non-finite loss or gradient (or steps with no usable rollout) before the run stops; default 5. */
  maxConsecutiveSkips?: number;
}

export interface RunRlResult {
  runId: string;
  runDir: string;
  status: 'completed' | 'cancelled';
  step: number;
  totalSteps: number;
  /** Metrics of the last step. */
  lastMetrics: Record<string, number>;
  /** The trained policy (HF layout) when completed. */
  modelDir: string | null;
  /** Sampler weights version after the last push. */
  weightsVersion: number;
}

/** A run that cannot go on (no rollouts survive, too many non-finite updates, nothing to resume). */
export class RlRunError extends TrainingError {
  constructor(message: string) {
    super(message);
    this.name = 'RlRunError';
  }
}

/** A model being trained, with its parameters and optimizer. */
export interface TrainedModel {
  model: LlamaModel;
  params: NamedVariable[];
  optimizer: AdamW;
}

type Tokenizer = Awaited<ReturnType<typeof loadTokenizer>>;

interface OnlineExtraState {
  klController: ReturnType<KlController['getState']>;
  weightsVersion: number;
  valueOptimizerT: number;
  /** PPO-ptx: where the next batch of the pretraining mix starts. */
  ptxPosition?: DataPosition;
}

/** A pool change in the run's log: joins, leaves and re-syncs as info, the rest as warnings. */
function logPoolEvent(logger: Logger, e: SamplerPoolEvent): void {
  const messages: Record<SamplerPoolEvent['kind'], string> = {
    added: 'sampler joined the pool; it gets the current weights before any prompt',
    removed: 'sampler left the pool; its prompts in flight are re-issued elsewhere',
    restarted: 'sampler lost its weights (restarted); re-syncing it',
    resynced: 'sampler re-synced to the current weights',
    'resync-failed': 'sampler re-sync failed; retried after its bench',
    'source-error': 'sampler addresses could not be refreshed; the pool is left as it is',
  };
  const fields = { sampler: e.sampler, ...(e.detail ? { detail: e.detail } : {}) };
  if (e.kind === 'added' || e.kind === 'removed' || e.kind === 'resynced') logger.info(messages[e.kind], fields);
  else logger.warn(messages[e.kind], fields);
}

/**
 * The run's sampler pool: the fixed list, or one following sampler_dns or sampler_file (its
 * first addresses waited for up to `waitMs`; a source that cannot be read is a config error).
 */
async function openSamplerPool(config: RlRunConfig, options: SamplerPoolOptions, waitMs: number, signal?: AbortSignal): Promise<SamplerPool> {
  const source = config.samplerSource;
  if (source.kind === 'list') return new SamplerPool(config.samplers, options);
  try {
    return await SamplerPool.open(samplerAddressSource(source), options, waitMs, signal);
  } catch (err) {
    if (!(err instanceof AddressSourceError)) throw err;
    const key = `${config.algorithm}.services.${source.kind === 'dns' ? 'sampler_dns' : 'sampler_file'}`;
    throw new RlConfigError(key, `${err.message}${err.retryable ? ` (waited ${waitMs} ms)` : ''}`);
  }
}

/** pool/* step metrics: size, replicas ready, re-syncs, restarts noticed, and completions per replica in the step's rollouts. */
export function poolMetrics(pool: SamplerPool): Record<string, number> {
  const stats = pool.stats();
  return {
    'pool/size': stats.size,
    'pool/ready': stats.ready,
    'pool/resyncs': stats.resyncs,
    'pool/restarts': stats.restarts,
    ...Object.fromEntries(stats.replicas.map((r) => [`pool/sampler_${r.index}`, r.acceptedLast])),
  };
}

/** The state of an online run between steps; see the file header. */
export class OnlineRun {
  /** The sampler weights version the last push installed. */
  weightsVersion: number;
  /** Samples trained on so far (train/samples). */
  samples = 0;
  /** Prompts in the data file (train/epoch). */
  readonly promptCount: number;
  /** The prompts of the steps to come, in flight on the samplers (up to max_staleness steps ahead). */
  readonly rollouts: RolloutQueue;
  /** rollout-ledger.jsonl: what each step consumed and dropped. */
  readonly ledger: RolloutLedger;
  /** The last weight push: seconds and bytes. */
  lastPush = { seconds: 0, bytes: 0 };
  /** Rows per forward pass outside the minibatch updates. */
  readonly forwardChunk: number;
  /** Non-finite updates and steps without usable rollouts, counted across the run (and its resumes). */
  readonly skips: SkipCounter;

  private constructor(
    readonly config: RlRunConfig,
    readonly harness: RunHarness,
    readonly logger: Logger,
    readonly tokenizer: Tokenizer,
    private readonly dataFile: IndexedDataFile,
    readonly prompts: ReturnType<typeof createPromptLoader>,
    readonly policy: TrainedModel,
    readonly critic: TrainedModel | null,
    readonly schedule: LrSchedule,
    readonly totalSteps: number,
    public kl: KlController,
    public rng: Rng,
    readonly pool: SamplerPool,
    readonly reference: ReferenceLogProbs | null,
    readonly reward: RewardScorer,
    /** PPO-ptx's pretraining mix; null when ptx_coef is 0. */
    readonly ptx: PtxMix | null,
    options: RunRlOptions,
  ) {
    this.promptCount = dataFile.length;
    this.rollouts = new RolloutQueue(this, config.stale.maxStaleness, options.signal, harness.step + 1);
    this.ledger = new RolloutLedger(harness.runDir, harness.resumedState?.step ?? null);
    this.forwardChunk = options.forwardChunk ?? 16;
    this.skips = harness.skipCounter(options.maxConsecutiveSkips ?? 5);
    const extra = harness.resumedState?.extra as OnlineExtraState | undefined;
    this.weightsVersion = extra?.weightsVersion ?? 0;
  }

  /** Opens the run: checks, resume, data, models (a critic when `withCritic`), optimizers, services. */
  static async open(config: RlRunConfig, options: RunRlOptions, withCritic: boolean): Promise<OnlineRun> {
    const logger = options.logger ?? createLogger({ service: 'trainer', fields: { stage: config.algorithm } });
    if (getBackendInfo() === null) await initBackend({ logger });
    const serviceRetryMs = options.serviceRetryMs ?? 60_000;
    if (!Number.isFinite(serviceRetryMs) || serviceRetryMs < 0) throw new RlConfigError('service_retry_ms', `got ${serviceRetryMs}, expected a number of milliseconds >= 0`);
    const harness = await RunHarness.open({
      stage: config.algorithm,
      runId: config.runId,
      outputDir: config.outputDir,
      resume: config.resume,
      configSnapshot: (runId) => ({ ...config, runId }),
      keepCheckpoints: config.keepCheckpoints,
      logger,
      callbacks: options.callbacks,
      signal: options.signal,
    });
    if (!existsSync(join(config.baseModelDir, 'config.json'))) throw new RlConfigError('model', `${JSON.stringify(config.baseModelDir)} is not a model directory (no config.json)`);
    if (!existsSync(config.datasetPath)) throw new RlConfigError('dataset.train', `file ${JSON.stringify(config.datasetPath)} does not exist`);
    const resumeFrom = harness.resumeFrom;
    const resumed = harness.resumedState;
    const extra = resumed?.extra as OnlineExtraState | undefined;

    // Prompts, with their ground truths.
    const tokenizer = await loadTokenizer(config.baseModelDir);
    const dataConfig = parseDataConfig(
      { format: 'prompt-only', fields: config.promptField ? { prompt: config.promptField } : {}, groundTruthField: config.groundTruthField, seed: config.seed, shuffle: true, dropLast: false, batchSize: config.promptsPerStep },
      'dataset',
    );
    const dataFile = await IndexedDataFile.open(config.datasetPath, dataConfig);
    const prompts = createPromptLoader(dataFile, tokenizer, dataConfig, resumed?.dataPosition);

    // The policy, and for PPO the critic: a value model, or a score head on a copy of the policy.
    const policyModel = await loadModel(resumeFrom ? join(resumeFrom, 'model') : config.baseModelDir);
    if (!policyModel.heads.lm) throw new RlConfigError('model', `${config.baseModelDir} has no LM head; the policy needs one`);
    let criticModel: LlamaModel | null = null;
    if (withCritic) {
      const valueModelDir = config.ppo?.valueModelDir ?? null;
      if (resumeFrom) criticModel = await loadModel(join(resumeFrom, 'value_model'));
      else if (valueModelDir) {
        const loaded = await loadModel(valueModelDir);
        criticModel = loaded.heads.score ? loaded : withScoreHead(loaded, { seed: config.seed });
        if (criticModel !== loaded) loaded.dispose();
      } else criticModel = withScoreHead(policyModel, { seed: config.seed });
    }

    // Schedule and optimizers (restored on resume), the KL controller and the minibatch RNG.
    const totalSteps = resumed?.totalSteps ?? config.maxSteps ?? Math.max(1, Math.ceil((config.maxEpochs * dataFile.length) / config.promptsPerStep));
    const { optimizer: settings } = config;
    const schedule: LrSchedule = { type: settings.schedule, baseLr: settings.learningRate, warmupSteps: warmupStepsFor(settings.warmupSteps, 0, totalSteps), totalSteps };
    const adam = { beta1: settings.beta1, beta2: settings.beta2, epsilon: settings.epsilon, weightDecay: settings.weightDecay };
    const trained = (model: LlamaModel): TrainedModel => {
      const params = model.namedTrainables();
      return { model, params, optimizer: new AdamW(params, adam) };
    };
    const policy = trained(policyModel);
    const critic = criticModel ? trained(criticModel) : null;
    let kl: KlController = config.kl.adaptiveTarget !== null ? new AdaptiveKlController(config.kl.coefficient, config.kl.adaptiveTarget, config.kl.adaptiveHorizon) : new FixedKlController(config.kl.coefficient);
    let rng = new Rng(config.seed).fork('minibatches');
    if (resumed && resumeFrom && extra) {
      policy.optimizer.loadState(resumed.optimizerT, await readOptimizerTensors(resumeFrom), join(resumeFrom, 'optimizer.safetensors'));
      if (critic) critic.optimizer.loadState(extra.valueOptimizerT, await readOptimizerTensors(resumeFrom, 'value_optimizer.safetensors'), join(resumeFrom, 'value_optimizer.safetensors'));
      kl = klControllerFromState(extra.klController);
      rng = Rng.fromState(resumed.rng);
      logger.info('resumed', { checkpoint: resumeFrom, step: resumed.step, weightsVersion: extra.weightsVersion });
    }

    // PPO-ptx: batches of the pretraining mix, as many rows as a minibatch unless ptx_batch_size says.
    const ptxConfig = config.ppo?.ptx ?? null;
    const ptx = ptxConfig ? await PtxMix.open(ptxConfig, ptxConfig.batchSize ?? config.minibatchSize, tokenizer, config.seed, extra?.ptxPosition) : null;

    // Services.
    const pool = await openSamplerPool(config, { onRetry: (e) => logger.warn('rollout attempt failed; prompt re-issued', e), onEvent: (e) => logPoolEvent(logger, e), ...options.pool }, serviceRetryMs, options.signal);
    const reference = config.kl.coefficient > 0 ? referenceServiceClient(config.referenceAddress!, { retryWindowMs: serviceRetryMs }) : null;
    const reward = rewardServiceClient(config.rewardAddress, config.rewardComponents, { retryWindowMs: serviceRetryMs });
    return new OnlineRun(config, harness, logger, tokenizer, dataFile, prompts, policy, critic, schedule, totalSteps, kl, rng, pool, reference, reward, ptx, options);
  }

  /** Sends the policy's weights to every sampler as `version`; the pool checks the acknowledged version. */
  async pushPolicy(version: number): Promise<WeightsPushResult> {
    const started = Date.now();
    const bytes = serializeSafetensors(modelToHfTensors(this.policy.model));
    const result = await this.pool.pushWeights(bytes, version);
    this.lastPush = { seconds: (Date.now() - started) / 1000, bytes: bytes.byteLength };
    for (const failure of result.failed) this.logger.warn('sampler missed a weights push; it gets no prompts until a push reaches it', { sampler: failure.sampler, version, error: failure.error });
    for (const sampler of result.background) this.logger.warn('sampler is benched after failures; its weights upload goes on in the background', { sampler, version });
    this.weightsVersion = version;
    return result;
  }

  /**
   * Every replica starts from the run's policy: a version above any it holds (a replica may
   * carry a previous run's weights, or this run's pushes made after the checkpoint).
   */
  async pushInitialPolicy(): Promise<void> {
    const held = (await this.pool.weightsVersions()).filter((v): v is number => v !== null);
    await this.pushPolicy(Math.max(this.weightsVersion, ...held) + 1);
  }

  /** Writes the state after `step` (both models, both optimizers, controller, version) as a checkpoint. */
  async checkpoint(step: number): Promise<void> {
    const skips = this.skips;
    const extra: OnlineExtraState = { klController: this.kl.getState(), weightsVersion: this.weightsVersion, valueOptimizerT: this.critic?.optimizer.t ?? 0, ...(this.ptx ? { ptxPosition: this.ptx.position() } : {}) };
    await this.harness.saveCheckpoint({
      models: [{ dir: 'model', model: this.policy.model }, ...(this.critic ? [{ dir: 'value_model', model: this.critic.model }] : [])],
      optimizers: [
        { file: 'optimizer.safetensors', tensors: this.policy.optimizer.stateTensors() },
        ...(this.critic ? [{ file: 'value_optimizer.safetensors', tensors: this.critic.optimizer.stateTensors() }] : []),
      ],
      state: {
        version: 1,
        stage: this.config.algorithm,
        step,
        totalSteps: this.totalSteps,
        optimizerT: this.policy.optimizer.t,
        scheduler: { ...this.schedule },
        rng: this.rng.getState(),
        dataPosition: this.rollouts.position(),
        consecutiveSkips: skips.consecutive,
        skippedSteps: skips.total,
        extra: extra as unknown as Record<string, unknown>,
      },
    });
  }

  /** After the loop: a last checkpoint if needed, the policy saved when completed, the report. */
  async finish(status: 'completed' | 'cancelled', lastMetrics: Record<string, number>): Promise<RunRlResult> {
    const { harness, config } = this;
    if (harness.unsaved) await this.checkpoint(harness.step);
    let modelDir: string | null = null;
    if (status === 'completed') {
      modelDir = join(harness.runDir, 'model');
      await saveModel(this.policy.model, modelDir);
    }
    harness.finish({
      title: `${config.algorithm} run ${harness.runId}`,
      summary: { run: harness.runId, stage: config.algorithm, status, steps: `${harness.step} / ${this.totalSteps}`, 'skipped updates': this.skips.total, model: config.baseModelDir, 'weights version': this.weightsVersion },
    });
    return { runId: harness.runId, runDir: harness.runDir, status, step: harness.step, totalSteps: this.totalSteps, lastMetrics, modelDir, weightsVersion: this.weightsVersion };
  }

  /** Releases models, optimizers, connections and the data file (also after an error). */
  async close(): Promise<void> {
    this.harness.close();
    await this.rollouts.settle();
    this.pool.close();
    this.reference?.close();
    this.reward.close();
    this.policy.optimizer.dispose();
    this.critic?.optimizer.dispose();
    this.policy.model.dispose();
    this.critic?.model.dispose();
    await this.dataFile.close();
    await this.ptx?.close();
  }
}

/**
 * Opens an online run, brings every sampler to the run's policy, drives `step` until the run
 * completes or is cancelled, and finishes it (last checkpoint, model, report).
 */
export async function runOnline(
  config: RlRunConfig,
  options: RunRlOptions,
  stage: { withCritic: boolean; step(run: OnlineRun, step: number): Promise<StepOutcome> },
): Promise<RunRlResult> {
  const run = await OnlineRun.open(config, options, stage.withCritic);
  try {
    await run.pushInitialPolicy();
    const { status, lastMetrics } = await run.harness.drive({
      totalSteps: run.totalSteps,
      logEverySteps: config.logEverySteps,
      checkpointEverySteps: config.checkpointEverySteps,
      // One span per step: the Generate, ComputeLogProbs, Score and LoadWeights
      // calls made during it carry its context, so the services' spans are its descendants.
      runStep: (step) => withSpan(`${config.algorithm}.step`, () => stage.step(run, step), { attributes: { 'posttrain.run_id': run.harness.runId, 'posttrain.step': step } }),
      checkpoint: (step) => run.checkpoint(step),
    });
    return await run.finish(status, lastMetrics);
  } finally {
    await run.close();
  }
}
