/**
 * Online RL runs (PPO with a critic, GRPO and its critic-free relatives) over
 * the serving tier. One step, read top to bottom in `runRl`:
 *
 *   1. rollouts: a batch of prompts fans out over the sampler pool (n each);
 *      stale rollouts are counted, dropped or importance-weighted
 *   2. old log-probs: the trainer's policy on the rollouts (pi_old of the ratio)
 *   3. reference log-probs: ReferenceModel.ComputeLogProbs (when the KL is on)
 *   4. scores: RewardScorer.Score
 *   5. advantages:
 *        PPO:  critic values -> KL-penalised per-token rewards -> GAE (-> whiten)
 *        GRPO: group-relative advantages of the scores (GRPO / Dr. GRPO / RLOO / REINFORCE++-baseline)
 *   6. epochs x minibatches: clipped policy loss (+ k-estimator KL term, + entropy bonus),
 *      PPO's clipped value loss on the critic; AdamW, gradient clipping, NaN skipping
 *   7. the adaptive KL controller sees the batch's KL
 *   8. LoadWeights(version + 1) to every sampler, acknowledged version checked
 *
 * Cancellation is checked at step boundaries. Checkpoints hold both models,
 * both optimizers, the RNG, the data position, the KL controller and the
 * sampler weights version; a resumed run repeats the uninterrupted one.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  AdaptiveKlController,
  FixedKlController,
  computeGae,
  drGrpoAdvantages,
  entropyBonusLoss,
  grpoAdvantages,
  klControllerFromState,
  klEstimate,
  klPenaltyLoss,
  maskedMean,
  maskedWhiten,
  ppoPolicyLoss,
  ppoValueLoss,
  reinforcePlusPlusBaselineAdvantages,
  rlooAdvantages,
} from '@posttrain/algorithms';
import type { GroupAdvantages, KlController } from '@posttrain/algorithms';
import { getBackendInfo, initBackend } from '@posttrain/backend';
import { IndexedDataFile, createPromptLoader, parseDataConfig } from '@posttrain/data';
import type { ChatMessage, PromptBatch } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { loadModel, modelToHfTensors, saveModel, withScoreHead } from '@posttrain/model';
import { ReferenceModelService, RewardScorerService, decodeTensor } from '@posttrain/proto';
import type { ScoreItem } from '@posttrain/proto';
import { Rng } from '@posttrain/random';
import { createClient } from '@posttrain/rpc';
import type { RpcClient } from '@posttrain/rpc';
import { readSafetensorsFile, serializeSafetensors } from '@posttrain/safetensors';
import type { Logger } from '@posttrain/telemetry';
import { JsonlMetricsSink, TensorBoardMetricsSink, createLogger, fanOutMetricsSinks, truncateMetricsJsonl, writeRunReport } from '@posttrain/telemetry';
import { loadTokenizer } from '@posttrain/tokenizer';
import type { LrSchedule, NamedVariable, OptimizerTensors, RunCallbacks } from '@posttrain/training';
import { AdamW, checkpointsDir, clipGradNorm, learningRateAt, listCheckpoints, pruneCheckpoints, readOptimizerTensors, readTrainerState, warmupStepsFor } from '@posttrain/training';
import type { RlRunConfig } from './rl-run-config';
import { RlConfigError } from './rl-run-config';
import type { RolloutBatch } from './rollout-batch';
import { buildRolloutBatch, criticValues, mapRowChunks, policyForward, selectRows, selectRowsOf } from './rollout-batch';
import { SamplerPool } from './sampler-pool';
import type { Rollout, SamplerPoolOptions } from './sampler-pool';
import { filterStaleRollouts, importanceWeights } from './stale-rollouts';

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
  /** Most minibatch updates in a row with a non-finite loss or gradient before the run stops; default 5. */
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
export class RlRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RlRunError';
  }
}

interface RlState {
  version: 1;
  stage: 'ppo' | 'grpo';
  step: number;
  totalSteps: number;
  optimizerT: number;
  scheduler: LrSchedule;
  rng: ReturnType<Rng['getState']>;
  dataPosition: ReturnType<ReturnType<typeof createPromptLoader>['position']>;
  consecutiveSkips: number;
  skippedSteps: number;
  extra: { klController: ReturnType<KlController['getState']>; weightsVersion: number; valueOptimizerT: number };
}

function timestampId(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}

function namedWeights(model: LlamaModel): NamedVariable[] {
  return [...model.weights].map(([name, variable]) => ({ name, variable }));
}

/** Gradients of `loss` w.r.t. params, clipped; applies AdamW unless non-finite. Returns the norm and whether it was skipped. */
function optimiserStep(params: NamedVariable[], optimizer: AdamW, lr: number, maxGradNorm: number | null, lossFn: () => tf.Scalar): { loss: number; norm: number; skipped: boolean } {
  const { value, grads } = tf.variableGrads(lossFn, params.map((p) => p.variable));
  const loss = value.dataSync()[0];
  value.dispose();
  const list = params.map((p) => grads[p.variable.name] ?? tf.zerosLike(p.variable));
  const clipped = clipGradNorm(list, maxGradNorm);
  const skipped = !Number.isFinite(loss) || !Number.isFinite(clipped.norm);
  if (!skipped) optimizer.apply(clipped.grads, lr);
  tf.dispose(clipped.grads);
  return { loss, norm: clipped.norm, skipped };
}

/** Running means of per-minibatch metrics. */
class Means {
  private readonly sums = new Map<string, [number, number]>();
  add(metrics: Record<string, number>): void {
    for (const [k, v] of Object.entries(metrics)) {
      const s = this.sums.get(k) ?? [0, 0];
      this.sums.set(k, [s[0] + v, s[1] + 1]);
    }
  }
  get(): Record<string, number> {
    return Object.fromEntries([...this.sums].map(([k, [s, n]]) => [k, s / n]));
  }
}

/** Mean of values[i] over mask[i] = 1 (0 when none). */
function hostMaskedMean(values: Float32Array, mask: Float32Array): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask[i] === 1) {
      s += values[i];
      n++;
    }
  }
  return n > 0 ? s / n : 0;
}

/** 1 - Var(returns - values) / Var(returns) over valid tokens (CleanRL's explained variance). */
export function explainedVariance(values: Float32Array, returns: Float32Array, mask: Float32Array): number {
  const variance = (f: (i: number) => number) => {
    let s = 0;
    let n = 0;
    for (let i = 0; i < mask.length; i++) {
      if (mask[i] === 1) {
        s += f(i);
        n++;
      }
    }
    const mean = s / n;
    let v = 0;
    for (let i = 0; i < mask.length; i++) if (mask[i] === 1) v += (f(i) - mean) ** 2;
    return v / n;
  };
  const varY = variance((i) => returns[i]);
  return varY === 0 ? Number.NaN : 1 - variance((i) => returns[i] - values[i]) / varY;
}

/** Reference log-probs [B*T] aligned like the batch, from ReferenceModel.ComputeLogProbs in chunks. */
async function referenceLogProbs(client: RpcClient<typeof ReferenceModelService>, rollouts: readonly Rollout[], batch: RolloutBatch, temperature: number, chunk: number): Promise<Float32Array> {
  const out = new Float32Array(batch.batch * batch.time);
  for (let start = 0; start < rollouts.length; start += chunk) {
    const part = rollouts.slice(start, start + chunk);
    const res = await client.unary('computeLogProbs', { sequences: part.map((r) => ({ promptIds: r.promptTokenIds, completionIds: r.tokenIds })), temperature, returnEntropies: false });
    const t = decodeTensor(res.logprobs!, 'logprobs');
    const width = t.shape[1];
    part.forEach((r, i) => {
      const b = start + i;
      if (res.completionLengths[i] !== r.tokenIds.length) throw new Error(`reference: sequence ${b} came back with ${res.completionLengths[i]} log-probs for ${r.tokenIds.length} completion tokens`);
      for (let k = 0; k < r.tokenIds.length; k++) out[b * batch.time + batch.promptLengths[b] + k] = (t.data as Float32Array)[i * width + k];
    });
  }
  return out;
}

/** RewardScorer.Score over the rollouts: total rewards and the per-component means (rewards/<name>). */
async function scoreRollouts(client: RpcClient<typeof RewardScorerService>, config: RlRunConfig, rollouts: readonly Rollout[], promptOf: Map<string, { prompt: string | ChatMessage[]; groundTruth: string | null }>): Promise<{ scores: Float32Array; components: Record<string, number> }> {
  const items: ScoreItem[] = rollouts.map((r, i) => {
    const p = promptOf.get(r.promptId)!;
    return {
      id: `${r.promptId}/${r.sampleIndex}#${i}`,
      prompt: typeof p.prompt === 'string' ? p.prompt : '',
      promptMessages: typeof p.prompt === 'string' ? [] : p.prompt.map((m) => ({ role: m.role, content: m.content })),
      completion: r.text,
      groundTruth: p.groundTruth ?? undefined,
      completionTokenIds: r.tokenIds,
    };
  });
  const res = await client.unary('score', { items, components: config.rewardComponents });
  if (res.scores.length !== items.length) throw new Error(`reward: ${res.scores.length} scores for ${items.length} items`);
  const scores = Float32Array.from(res.scores, (s) => s.reward);
  const components: Record<string, number> = {};
  for (const c of config.rewardComponents) components[`rewards/${c.name}`] = 0;
  for (const s of res.scores) for (const c of s.components) components[`rewards/${c.name}`] += c.value / res.scores.length;
  return { scores, components };
}

function groupAdvantages(estimator: NonNullable<RlRunConfig['grpo']>['estimator'], scores: tf.Tensor1D, groupSize: number): GroupAdvantages {
  switch (estimator) {
    case 'grpo':
      return grpoAdvantages(scores, groupSize);
    case 'dr-grpo':
      return drGrpoAdvantages(scores, groupSize);
    case 'rloo':
      return rlooAdvantages(scores, groupSize);
    case 'reinforce-pp-baseline':
      return reinforcePlusPlusBaselineAdvantages(scores, groupSize);
  }
}

async function saveOptimizer(path: string, tensors: OptimizerTensors, format: string): Promise<void> {
  await writeFile(path, serializeSafetensors(tensors, { format }));
}

/**
 * Runs a PPO or GRPO stage to completion or cancellation. Writes
 * <outputDir>/<runId>/: config.json, metrics.jsonl, TensorBoard events,
 * checkpoints/step-N/ (model/, value_model/, optimizer states, trainer_state.json), model/, report.html.
 */
export async function runRl(config: RlRunConfig, options: RunRlOptions = {}): Promise<RunRlResult> {
  const c = config;
  const log = options.logger ?? createLogger({ service: 'trainer', fields: { stage: c.algorithm } });
  if (getBackendInfo() === null) await initBackend({ logger: log });
  const cb = options.callbacks ?? {};
  const chunk = options.forwardChunk ?? 16;
  const maxConsecutiveSkips = options.maxConsecutiveSkips ?? 5;
  const runId = c.runId ?? `${c.algorithm}-${timestampId()}`;
  const runDir = resolve(c.outputDir, runId);
  const checkpoints = await listCheckpoints(runDir);
  if (c.resume && checkpoints.length === 0) throw new RlRunError(`resume: no checkpoint to resume from in ${checkpointsDir(runDir)}`);
  if (!c.resume && existsSync(join(runDir, 'metrics.jsonl'))) throw new RlRunError(`run_id: ${runDir} already holds a run; set resume to continue it, or choose another run_id`);
  const resumeFrom = c.resume ? checkpoints[checkpoints.length - 1] : null;
  const state0 = resumeFrom ? ((await readTrainerState(resumeFrom.path)) as unknown as RlState) : null;
  if (state0 && state0.stage !== c.algorithm) throw new RlRunError(`resume: checkpoint ${resumeFrom!.path} is of stage ${state0.stage}, this run is ${c.algorithm}`);
  if (!existsSync(join(c.baseModelDir, 'config.json'))) throw new RlConfigError('base_model_dir', `${JSON.stringify(c.baseModelDir)} is not a model directory (no config.json)`);
  if (!existsSync(c.datasetPath)) throw new RlConfigError('dataset.paths[0]', `file ${JSON.stringify(c.datasetPath)} does not exist`);
  await mkdir(runDir, { recursive: true });
  await writeFile(join(runDir, 'config.json'), JSON.stringify({ ...c, runId }, null, 2) + '\n');

  // --- data: prompts, with their ground truths ---
  const tokenizer = await loadTokenizer(c.baseModelDir);
  const dataConfig = parseDataConfig(
    {
      format: 'prompt-only',
      fields: c.promptField ? { prompt: c.promptField } : {},
      groundTruthField: c.groundTruthField,
      seed: c.seed,
      shuffle: true,
      dropLast: false,
      batchSize: c.promptsPerStep,
    },
    'dataset',
  );
  const dataFile = await IndexedDataFile.open(c.datasetPath, dataConfig);
  const loader = createPromptLoader(dataFile, tokenizer, dataConfig, state0?.dataPosition);

  // --- models: the policy, and for PPO the critic (value head) ---
  const policy = await loadModel(resumeFrom ? join(resumeFrom.path, 'model') : c.baseModelDir);
  if (!policy.heads.lm) throw new RlConfigError('base_model_dir', `${c.baseModelDir} has no LM head; the policy needs one`);
  let critic: LlamaModel | null = null;
  if (c.ppo) {
    if (resumeFrom) critic = await loadModel(join(resumeFrom.path, 'value_model'));
    else if (c.ppo.valueModelDir) {
      const loaded = await loadModel(c.ppo.valueModelDir);
      critic = loaded.heads.score ? loaded : withScoreHead(loaded, { seed: c.seed });
      if (critic !== loaded) loaded.dispose();
    } else critic = withScoreHead(policy, { seed: c.seed });
  }
  const policyParams = namedWeights(policy);
  const criticParams = critic ? namedWeights(critic) : [];

  // --- schedule, optimizers, controller, RNG ---
  const totalSteps = state0?.totalSteps ?? c.maxSteps ?? Math.max(1, Math.ceil((c.maxEpochs * dataFile.length) / c.promptsPerStep));
  const schedule: LrSchedule = { type: c.optimizer.schedule, baseLr: c.optimizer.learningRate, warmupSteps: warmupStepsFor(c.optimizer.warmupSteps, 0, totalSteps), totalSteps };
  const adam = { beta1: c.optimizer.beta1, beta2: c.optimizer.beta2, epsilon: c.optimizer.epsilon, weightDecay: c.optimizer.weightDecay };
  const policyOptimizer = new AdamW(policyParams, adam);
  const criticOptimizer = critic ? new AdamW(criticParams, adam) : null;
  let kl: KlController = c.kl.adaptiveTarget !== null ? new AdaptiveKlController(c.kl.coefficient, c.kl.adaptiveTarget, c.kl.adaptiveHorizon) : new FixedKlController(c.kl.coefficient);
  let rng = new Rng(c.seed).fork('minibatches');
  let step = 0;
  let skippedSteps = 0;
  let consecutiveSkips = 0;
  let weightsVersion = 0;
  if (state0 && resumeFrom) {
    policyOptimizer.loadState(state0.optimizerT, await readOptimizerTensors(resumeFrom.path), join(resumeFrom.path, 'optimizer.safetensors'));
    if (criticOptimizer) {
      const path = join(resumeFrom.path, 'value_optimizer.safetensors');
      const { tensors } = await readSafetensorsFile(path);
      criticOptimizer.loadState(state0.extra.valueOptimizerT, new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data }])), path);
    }
    kl = klControllerFromState(state0.extra.klController);
    rng = Rng.fromState(state0.rng);
    step = state0.step;
    skippedSteps = state0.skippedSteps;
    consecutiveSkips = state0.consecutiveSkips;
    weightsVersion = state0.extra.weightsVersion;
    log.info('resumed', { checkpoint: resumeFrom.path, step, weightsVersion });
  }

  // --- services ---
  const pool = new SamplerPool(c.samplers, { onRetry: (e) => log.warn('rollout attempt failed; prompt re-issued', e), ...options.pool });
  const serviceRetryMs = options.serviceRetryMs ?? 60_000;
  if (!Number.isFinite(serviceRetryMs) || serviceRetryMs < 0) throw new RlConfigError('service_retry_ms', `got ${serviceRetryMs}, expected a number of milliseconds >= 0`);
  // A restarted service is reconnected to within a second or two, not after grpc-js's default backoff (up to 120 s).
  const reconnect = { 'grpc.initial_reconnect_backoff_ms': 250, 'grpc.max_reconnect_backoff_ms': 2_000 };
  const reference = c.kl.coefficient > 0 ? createClient(ReferenceModelService, [c.referenceAddress!], { serviceLabel: 'reference service', retryWindowMs: serviceRetryMs, channelOptions: reconnect }) : null;
  const reward = createClient(RewardScorerService, [c.rewardAddress], { serviceLabel: 'reward service', retryWindowMs: serviceRetryMs, channelOptions: reconnect });
  const pushPolicy = async (version: number) => {
    const bytes = serializeSafetensors(modelToHfTensors(policy));
    const res = await pool.pushWeights(bytes, version);
    for (const f of res.failed) log.warn('sampler missed a weights push; it gets no prompts until a push reaches it', { sampler: f.sampler, version, error: f.error });
    for (const b of res.background) log.warn('sampler is benched after failures; its weights upload goes on in the background', { sampler: b, version });
    return res;
  };

  // --- artifacts ---
  const metricsPath = join(runDir, 'metrics.jsonl');
  if (resumeFrom) truncateMetricsJsonl(metricsPath, step);
  const sink = fanOutMetricsSinks([new JsonlMetricsSink(metricsPath), new TensorBoardMetricsSink(runDir)]);
  const checkpoint = async (): Promise<void> => {
    const root = checkpointsDir(runDir);
    await mkdir(root, { recursive: true });
    const final = join(root, `step-${step}`);
    const tmp = join(root, `.step-${step}.tmp-${process.pid}-${Date.now()}`);
    await mkdir(tmp);
    try {
      await saveModel(policy, join(tmp, 'model'));
      await saveOptimizer(join(tmp, 'optimizer.safetensors'), policyOptimizer.stateTensors(), 'posttrain-adamw');
      if (critic && criticOptimizer) {
        await saveModel(critic, join(tmp, 'value_model'));
        await saveOptimizer(join(tmp, 'value_optimizer.safetensors'), criticOptimizer.stateTensors(), 'posttrain-adamw');
      }
      const state: RlState = {
        version: 1,
        stage: c.algorithm,
        step,
        totalSteps,
        optimizerT: policyOptimizer.t,
        scheduler: schedule,
        rng: rng.getState(),
        dataPosition: loader.position(),
        consecutiveSkips,
        skippedSteps,
        extra: { klController: kl.getState(), weightsVersion, valueOptimizerT: criticOptimizer?.t ?? 0 },
      };
      await writeFile(join(tmp, 'trainer_state.json'), JSON.stringify(state, null, 2) + '\n');
      if (existsSync(final)) await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    await pruneCheckpoints(runDir, c.keepCheckpoints);
    cb.onCheckpoint?.({ step, path: final });
    log.info('checkpoint', { step, path: final });
  };

  let status: RunRlResult['status'] = 'completed';
  let lastMetrics: Record<string, number> = {};
  let lastSavedStep = resumeFrom ? step : -1;
  let samples = 0;
  try {
    // Every replica starts from the run's policy: a version above any it holds (a replica may
    // carry a previous run's weights, or this run's pushes made after the checkpoint).
    const held = (await pool.weightsVersions()).filter((v): v is number => v !== null);
    weightsVersion = Math.max(weightsVersion, ...held) + 1;
    await pushPolicy(weightsVersion);

    while (step < totalSteps) {
      if (options.signal?.aborted) {
        status = 'cancelled';
        log.info('cancelled at a step boundary', { step });
        break;
      }
      const t0 = Date.now();
      const lr = learningRateAt(step, schedule);
      step++;
      const G = c.samplesPerPrompt;
      const temperature = c.sampling.temperature;

      // 1. Rollouts from the sampler pool; stale ones counted and handled by the policy.
      const prompts: PromptBatch = await loader.next();
      const promptOf = new Map<string, { prompt: string | ChatMessage[]; groundTruth: string | null }>();
      const rolloutPrompts = Array.from({ length: prompts.batchSize }, (_, i) => {
        const id = `s${step}-p${i}-l${prompts.lines[i]}`;
        promptOf.set(id, { prompt: prompts.prompts[i], groundTruth: prompts.groundTruths[i] });
        const L = prompts.seqLen;
        const row = Array.from(prompts.inputIds.subarray(i * L, (i + 1) * L));
        const mask = prompts.attentionMask.subarray(i * L, (i + 1) * L);
        return { id, tokenIds: row.filter((_, t) => mask[t] === 1) };
      });
      const generated = await pool.generate(rolloutPrompts, { n: G, sampling: c.sampling, seed: c.seed, signal: options.signal });
      const { kept, stale, dropped } = filterStaleRollouts(generated.rollouts, weightsVersion, c.stale.maxStaleness, c.grpo ? G : 1);
      const rolloutMetrics: Record<string, number> = {
        'rollout/count': generated.rollouts.length,
        'rollout/stale': stale,
        'rollout/dropped': dropped,
        'rollout/retries': generated.retries,
        ...Object.fromEntries(c.samplers.map((a, i) => [`rollout/sampler_${i}`, generated.perSampler[a]])),
      };
      if (kept.length === 0) {
        consecutiveSkips++;
        skippedSteps++;
        log.warn('every rollout of the step was too stale; step skipped', { step, stale, dropped });
        if (consecutiveSkips > maxConsecutiveSkips) throw new RlRunError(`step ${step}: ${consecutiveSkips} steps in a row had no usable rollouts (all older than max_staleness = ${c.stale.maxStaleness}); the samplers are not receiving weight pushes`);
        lastMetrics = { ...rolloutMetrics, 'train/skipped_steps': skippedSteps };
        sink.write(step, lastMetrics);
        cb.onStep?.({ step, totalSteps, metrics: lastMetrics, skipped: true });
        continue;
      }
      const batch = buildRolloutBatch(kept, tokenizer.padTokenId);
      const { batch: B, time: T, actionMask } = batch;
      samples += B;

      // 2. pi_old: the trainer's policy on the rollouts (matches the sampler's log-probs for fresh rollouts).
      const oldLogProbs = mapRowChunks(batch, chunk, (part) => tf.tidy(() => policyForward(policy, part, temperature).logProbs));
      const freshTokens = new Float32Array(B * T);
      kept.forEach((r, b) => {
        if (r.weightsVersion === weightsVersion) for (let t = 0; t < T; t++) freshTokens[b * T + t] = actionMask[b * T + t];
      });
      const absDiff = oldLogProbs.map((v, i) => Math.abs(v - batch.behaviourLogProbs[i]));
      const staleRows = kept.map((r) => r.weightsVersion < weightsVersion);
      const isWeights = c.stale.policy === 'importance-correct' ? importanceWeights({ currentLogProbs: oldLogProbs, behaviourLogProbs: batch.behaviourLogProbs, actionMask, staleRows, time: T, cap: 1 + c.clipHigh }) : new Float32Array(B * T).fill(1);

      // 3. Reference log-probs (only when the KL term is on).
      const refLogProbs = reference ? await referenceLogProbs(reference, kept, batch, temperature, 64) : null;

      // 4. Scores from the reward service.
      const { scores, components } = await scoreRollouts(reward, c, kept, promptOf);

      // 5. Advantages (per token [B*T]) and, for PPO, value targets.
      let advantages: Float32Array;
      let oldValues: Float32Array | null = null;
      let returns: Float32Array | null = null;
      const objective: Record<string, number> = {};
      let klPerSequence = 0;
      tf.tidy(() => {
        const mask = tf.tensor2d(actionMask, [B, T]);
        const oldLp = tf.tensor2d(oldLogProbs, [B, T]);
        const refLp = refLogProbs ? tf.tensor2d(refLogProbs, [B, T]) : oldLp;
        const klTok = tf.mul(klEstimate(oldLp, refLp, c.kl.estimator), mask); // (B,T)
        klPerSequence = tf.mean(tf.sum(klTok, 1)).dataSync()[0];
        objective['objective/kl'] = klPerSequence;
        objective['objective/kl_per_token'] = maskedMean(klTok, mask).dataSync()[0];
        objective['objective/kl_coef'] = kl.value;
        objective['objective/scores'] = tf.mean(tf.tensor1d(scores)).dataSync()[0];
        if (c.ppo) {
          // PPO: per-token rewards r_t = -beta kl_t (when the KL is a reward penalty), + score at the last token.
          const beta = c.kl.placement === 'reward' ? kl.value : 0;
          const rewardsNonScore = tf.mul(-beta, klTok); // (B,T)
          const lastIdx = kept.map((_, b) => batch.promptLengths[b] + batch.completionLengths[b] - 1);
          const atLast = tf.oneHot(tf.tensor1d(lastIdx, 'int32'), T); // (B,T)
          const rewards = tf.add(rewardsNonScore, tf.mul(tf.cast(atLast, 'float32'), tf.expandDims(tf.tensor1d(scores), 1))) as tf.Tensor2D;
          objective['objective/non_score_reward'] = tf.mean(tf.sum(rewardsNonScore, 1)).dataSync()[0];
          objective['objective/rlhf_reward'] = objective['objective/non_score_reward'] + objective['objective/scores'];
          oldValues = mapRowChunks(batch, chunk, (part) => criticValues(critic!, part));
          const gae = computeGae({ rewards, values: tf.tensor2d(oldValues, [B, T]), actionMask: mask as tf.Tensor2D, gamma: c.ppo.gamma, lambda: c.ppo.gaeLambda });
          returns = gae.returns.dataSync() as Float32Array;
          const adv = c.ppo.whitenAdvantages ? tf.mul(maskedWhiten(gae.advantages, mask), mask) : gae.advantages;
          advantages = adv.dataSync() as Float32Array;
          objective['val/explained_variance'] = explainedVariance(oldValues, returns, actionMask);
        } else {
          // GRPO: one score per sequence (KL as a reward penalty subtracts beta * sum_t kl_t), group-relative advantages.
          const seqScores = c.kl.placement === 'reward' && reference ? tf.sub(tf.tensor1d(scores), tf.mul(kl.value, tf.sum(klTok, 1))) : tf.tensor1d(scores);
          const group = groupAdvantages(c.grpo!.estimator, seqScores as tf.Tensor1D, G);
          Object.assign(objective, group.metrics);
          advantages = tf.mul(tf.expandDims(group.advantages, 1), mask).dataSync() as Float32Array; // (B,T): A_i on every token of sequence i
        }
      });
      advantages = advantages!.map((a, i) => a * isWeights[i]);

      // 6. Epochs over shuffled minibatches: clipped policy loss (+ KL term, + entropy bonus); PPO's value loss.
      const means = new Means();
      const mbSize = Math.min(c.minibatchSize, B);
      const klInLoss = c.kl.placement === 'loss' && refLogProbs !== null && kl.value > 0;
      for (let epoch = 0; epoch < c.epochs; epoch++) {
        const order = rng.shuffle(Array.from({ length: B }, (_, i) => i));
        for (let start = 0; start < B; start += mbSize) {
          const rows = order.slice(start, start + mbSize);
          const mb = selectRows(batch, rows);
          const Tm = mb.time;
          const pick = (flat: Float32Array) => tf.tensor2d(selectRowsOf(flat, T, rows, Tm), [rows.length, Tm]);
          const metrics: Record<string, number> = {};
          const policyStep = optimiserStep(policyParams, policyOptimizer, lr, c.optimizer.maxGradNorm, () => {
            const { logProbs, entropy } = policyForward(policy, mb, temperature);
            const mask = pick(actionMask);
            const pg = ppoPolicyLoss({
              logProbs,
              oldLogProbs: pick(oldLogProbs),
              advantages: pick(advantages),
              actionMask: mask,
              clipLow: c.clipLow,
              clipHigh: c.clipHigh,
              dualClip: c.dualClip ?? undefined,
              aggregation: c.grpo?.aggregation ?? 'token-mean',
              constantNormaliser: c.grpo?.aggregation === 'seq-mean-token-sum-norm' ? c.sampling.maxNewTokens : undefined,
            });
            Object.assign(metrics, pg.metrics);
            let loss: tf.Scalar = pg.loss;
            if (klInLoss) {
              const klTerm = klPenaltyLoss({ logProbs, refLogProbs: pick(refLogProbs!), actionMask: mask, coefficient: kl.value, estimator: c.kl.estimator, aggregation: c.grpo?.aggregation ?? 'token-mean', constantNormaliser: c.grpo?.aggregation === 'seq-mean-token-sum-norm' ? c.sampling.maxNewTokens : undefined });
              metrics['loss/kl'] = klTerm.metrics['loss/kl'];
              loss = tf.add(loss, klTerm.loss);
            }
            const ent = entropyBonusLoss({ entropy, actionMask: mask, coefficient: c.ppo?.entropyCoefficient ?? 0 });
            metrics['objective/entropy'] = ent.metrics['objective/entropy'];
            if ((c.ppo?.entropyCoefficient ?? 0) > 0) loss = tf.add(loss, ent.loss);
            return loss;
          });
          metrics['policy/grad_norm'] = policyStep.norm;
          let valueSkipped = false;
          if (critic && criticOptimizer && c.ppo) {
            const ppo = c.ppo;
            const valueStep = optimiserStep(criticParams, criticOptimizer, lr, c.optimizer.maxGradNorm, () => {
              const values = criticValues(critic!, mb);
              const vf = ppoValueLoss({ values, oldValues: pick(oldValues!), returns: pick(returns!), actionMask: pick(actionMask), clipRange: ppo.valueClip ?? undefined });
              metrics['loss/value'] = vf.metrics['loss/value'];
              metrics['val/clipfrac'] = vf.metrics['value/clipfrac'];
              metrics['val/mean'] = vf.metrics['value/mean'];
              return tf.mul(ppo.valueLossCoefficient, vf.loss) as tf.Scalar;
            });
            metrics['val/grad_norm'] = valueStep.norm;
            valueSkipped = valueStep.skipped;
          }
          if (policyStep.skipped || valueSkipped) {
            consecutiveSkips++;
            skippedSteps++;
            log.warn('non-finite loss or gradient: minibatch update skipped', { step, epoch, loss: policyStep.loss, gradNorm: policyStep.norm, consecutiveSkips });
            if (consecutiveSkips > maxConsecutiveSkips) throw new RlRunError(`step ${step}: ${consecutiveSkips} minibatch updates in a row had a non-finite loss or gradient (policy loss ${policyStep.loss}, grad norm ${policyStep.norm}); lower optimizer.learning_rate`);
          } else consecutiveSkips = 0;
          means.add(metrics);
        }
      }

      // 7. The adaptive KL controller follows the batch's KL (Ziegler et al.: n = batch size).
      kl.update(klPerSequence, B);

      // 8. New weights to every sampler, version n + 1, acknowledged version checked by the pool.
      weightsVersion++;
      const push = await pushPolicy(weightsVersion);

      const trained = means.get();
      const metrics: Record<string, number> = {
        ...objective,
        ...components,
        ...trained,
        ...rolloutMetrics,
        'rollout/completion_length': batch.completionLengths.reduce((a, b) => a + b, 0) / B,
        'rollout/logprob_diff': hostMaskedMean(absDiff, freshTokens),
        'rollout/weights_version': weightsVersion,
        'rollout/samplers_acked': push.acked.length,
        'train/learning_rate': lr,
        'train/epoch': step * c.promptsPerStep / dataFile.length,
        'train/skipped_steps': skippedSteps,
        'train/samples': samples,
        'time/step_seconds': (Date.now() - t0) / 1000,
      };
      lastMetrics = metrics;
      if (step % c.logEverySteps === 0 || step === totalSteps || step === 1) sink.write(step, metrics);
      cb.onStep?.({ step, totalSteps, metrics, skipped: false });
      log.info('step', { step, totalSteps, scores: metrics['objective/scores'], kl: metrics['objective/kl'], klCoef: metrics['objective/kl_coef'] });
      if (c.checkpointEverySteps > 0 && step % c.checkpointEverySteps === 0 && step !== totalSteps) {
        await checkpoint();
        lastSavedStep = step;
      }
    }
    if (lastSavedStep !== step) await checkpoint();
    let modelDir: string | null = null;
    if (status === 'completed') {
      modelDir = join(runDir, 'model');
      await saveModel(policy, modelDir);
    }
    sink.close();
    writeRunReport(runDir, {
      title: `${c.algorithm} run ${runId}`,
      summary: { run: runId, stage: c.algorithm, status, steps: `${step} / ${totalSteps}`, 'skipped updates': skippedSteps, model: c.baseModelDir, 'weights version': weightsVersion },
      config: { ...c, runId },
    });
    return { runId, runDir, status, step, totalSteps, lastMetrics, modelDir, weightsVersion };
  } catch (e) {
    sink.close();
    throw e;
  } finally {
    pool.close();
    reference?.close();
    reward.close();
    policyOptimizer.dispose();
    criticOptimizer?.dispose();
    policy.dispose();
    critic?.dispose();
    await dataFile.close();
  }
}
