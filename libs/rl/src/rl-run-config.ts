/**
 * The knobs of an online RL run, resolved from the wire's RunSpec (with a
 * PpoSpec or GrpoSpec stage; trainer.proto is their spec). Every field is
 * checked with an error naming its proto path, the value, and what was
 * expected; unset fields take the documented defaults.
 */
import type { LrSchedulerType } from '@posttrain/training';
import type { KlEstimator, LossAggregation } from '@posttrain/algorithms';
import { AdvantageEstimator, DatasetFormat, KlEstimator as WireKlEstimator, KlPlacement, LossAggregation as WireLossAggregation, LrSchedule, StaleRolloutPolicy } from '@posttrain/proto';
import type { GrpoSpec, KlSpec, PpoSpec, RewardComponent, RunSpec, SamplingParams } from '@posttrain/proto';
import type { StalePolicy } from './stale-rollouts';

export type GroupEstimator = 'grpo' | 'dr-grpo' | 'rloo' | 'reinforce-pp-baseline';

export interface RlRunConfig {
  algorithm: 'ppo' | 'grpo';
  /** null: generated from the algorithm and the time. */
  runId: string | null;
  name: string;
  baseModelDir: string;
  /** Parent of the run directory (runs/ by default). */
  outputDir: string;
  datasetPath: string;
  promptField: string | null;
  groundTruthField: string | null;
  maxSamples: number;
  seed: number;
  /** Number of steps (rollout batch + update); from max_steps or max_epochs once the data size is known. */
  maxSteps: number | null;
  maxEpochs: number;
  optimizer: { learningRate: number; schedule: LrSchedulerType; warmupSteps: number; weightDecay: number; beta1: number; beta2: number; epsilon: number; maxGradNorm: number | null };
  checkpointEverySteps: number;
  keepCheckpoints: number | null;
  resume: boolean;
  logEverySteps: number;
  samplers: string[];
  referenceAddress: string | null;
  rewardAddress: string;
  rewardComponents: RewardComponent[];
  promptsPerStep: number;
  samplesPerPrompt: number;
  epochs: number;
  minibatchSize: number;
  clipLow: number;
  clipHigh: number;
  dualClip: number | null;
  kl: { coefficient: number; adaptiveTarget: number | null; adaptiveHorizon: number; estimator: KlEstimator; placement: 'reward' | 'loss' };
  stale: { policy: StalePolicy; maxStaleness: number };
  /** Sampling parameters of the rollouts (seed and logprobs are set by the pool). */
  sampling: Omit<SamplingParams, 'seed' | 'logprobs'> & { temperature: number };
  ppo: { valueClip: number | null; gamma: number; gaeLambda: number; whitenAdvantages: boolean; valueLossCoefficient: number; entropyCoefficient: number; valueModelDir: string | null } | null;
  grpo: { estimator: GroupEstimator; aggregation: LossAggregation } | null;
}

/** A RunSpec field that is missing or out of range; the message names the field. */
export class RlConfigError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'RlConfigError';
  }
}

function check(ok: boolean, field: string, value: unknown, expected: string): void {
  if (!ok) throw new RlConfigError(field, `got ${JSON.stringify(value)}, expected ${expected}`);
}

const isInt = (v: number) => Number.isSafeInteger(v);

function klOf(kl: KlSpec | undefined, field: string, algorithm: 'ppo' | 'grpo'): RlRunConfig['kl'] {
  const k = kl ?? { coefficient: 0, adaptiveHorizon: 0, estimator: WireKlEstimator.UNSPECIFIED, placement: KlPlacement.UNSPECIFIED };
  check(Number.isFinite(k.coefficient) && k.coefficient >= 0, `${field}.coefficient`, k.coefficient, 'a number >= 0');
  let adaptiveTarget: number | null = null;
  if (k.adaptiveTarget !== undefined) {
    check(Number.isFinite(k.adaptiveTarget) && k.adaptiveTarget > 0, `${field}.adaptive_target`, k.adaptiveTarget, 'a number > 0');
    check(isInt(k.adaptiveHorizon) && k.adaptiveHorizon > 0, `${field}.adaptive_horizon`, k.adaptiveHorizon, 'an integer > 0 when adaptive_target is set');
    check(k.coefficient > 0, `${field}.coefficient`, k.coefficient, 'a number > 0 when adaptive_target is set (the controller scales it multiplicatively)');
    adaptiveTarget = k.adaptiveTarget;
  }
  const estimators: Record<number, KlEstimator> = { [WireKlEstimator.K1]: 'k1', [WireKlEstimator.K2]: 'k2', [WireKlEstimator.K3]: 'k3' };
  const estimator = k.estimator === WireKlEstimator.UNSPECIFIED ? (algorithm === 'ppo' ? 'k1' : 'k3') : estimators[k.estimator];
  check(estimator !== undefined, `${field}.estimator`, k.estimator, 'KL_ESTIMATOR_K1, K2 or K3');
  const placement = k.placement === KlPlacement.UNSPECIFIED ? (algorithm === 'ppo' ? 'reward' : 'loss') : k.placement === KlPlacement.REWARD ? 'reward' : k.placement === KlPlacement.LOSS ? 'loss' : null;
  check(placement !== null, `${field}.placement`, k.placement, 'KL_PLACEMENT_REWARD or KL_PLACEMENT_LOSS');
  return { coefficient: k.coefficient, adaptiveTarget, adaptiveHorizon: k.adaptiveHorizon, estimator, placement: placement! };
}

function staleOf(policy: StaleRolloutPolicy, maxStaleness: number, field: string): RlRunConfig['stale'] {
  const p = policy === StaleRolloutPolicy.UNSPECIFIED || policy === StaleRolloutPolicy.DROP ? 'drop' : policy === StaleRolloutPolicy.IMPORTANCE_CORRECT ? 'importance-correct' : null;
  check(p !== null, `${field}.stale_rollouts`, policy, 'STALE_ROLLOUT_POLICY_DROP or STALE_ROLLOUT_POLICY_IMPORTANCE_CORRECT');
  check(isInt(maxStaleness) && maxStaleness >= 0, `${field}.max_staleness`, maxStaleness, 'an integer >= 0');
  return { policy: p!, maxStaleness };
}

function samplingOf(s: SamplingParams | undefined, field: string): RlRunConfig['sampling'] {
  const temperature = s?.temperature ?? 1;
  check(Number.isFinite(temperature) && temperature > 0, `${field}.sampling.temperature`, temperature, 'a number > 0 (PPO needs the log-probs of a sampling distribution; 0 is greedy)');
  if (s?.topP !== undefined) check(s.topP > 0 && s.topP <= 1, `${field}.sampling.top_p`, s.topP, 'a value in (0, 1]');
  check(isInt(s?.topK ?? 0) && (s?.topK ?? 0) >= 0, `${field}.sampling.top_k`, s?.topK, 'an integer >= 0');
  if (s?.maxNewTokens !== undefined) check(isInt(s.maxNewTokens) && s.maxNewTokens >= 1, `${field}.sampling.max_new_tokens`, s.maxNewTokens, 'an integer >= 1');
  return { temperature, topP: s?.topP, topK: s?.topK ?? 0, maxNewTokens: s?.maxNewTokens, stop: s?.stop ?? [], stopTokenIds: s?.stopTokenIds ?? [] };
}

function clipsOf(clipLow: number, clipHigh: number, field: string): { clipLow: number; clipHigh: number } {
  const low = clipLow === 0 ? 0.2 : clipLow;
  check(low > 0 && low < 1, `${field}.clip_low`, clipLow, 'a value in (0, 1) (0 means the default 0.2)');
  const high = clipHigh === 0 ? low : clipHigh;
  check(Number.isFinite(high) && high > 0, `${field}.clip_high`, clipHigh, 'a number > 0 (0 means clip_low)');
  return { clipLow: low, clipHigh: high };
}

/** Resolves and validates a RunSpec whose stage is ppo or grpo. */
export function resolveRlRunConfig(spec: RunSpec): RlRunConfig {
  const stage = spec.stage;
  if (stage?.$case !== 'ppo' && stage?.$case !== 'grpo') throw new RlConfigError('stage', `got ${JSON.stringify(stage?.$case ?? null)}, expected "ppo" or "grpo"`);
  const algorithm = stage.$case;
  const f = algorithm;
  check(spec.runId === '' || /^[a-z0-9_-]{1,64}$/.test(spec.runId), 'run_id', spec.runId, '[a-z0-9-_], at most 64 characters');
  check(spec.baseModelDir !== '', 'base_model_dir', spec.baseModelDir, 'a model directory');
  const d = spec.dataset;
  check(d !== undefined && d.paths.length === 1, 'dataset.paths', d?.paths, 'exactly one JSONL file of prompts');
  check(d!.format === DatasetFormat.UNSPECIFIED || d!.format === DatasetFormat.PROMPT_ONLY, 'dataset.format', d!.format, 'DATASET_FORMAT_PROMPT_ONLY');
  check(d!.evalPaths.length === 0 && d!.evalFraction === 0, 'dataset.eval_paths', d!.evalPaths, 'none (online runs evaluate through their rewards)');
  check(d!.maxSamples === 0, 'dataset.max_samples', d!.maxSamples, '0 (online runs use every prompt of the file)');
  check(isInt(spec.seed) && spec.seed >= 0 && spec.seed <= 0xffffffff, 'seed', spec.seed, 'an unsigned 32-bit integer');
  check(isInt(spec.maxSteps) && spec.maxSteps >= 0, 'max_steps', spec.maxSteps, 'an integer >= 0');
  check(Number.isFinite(spec.maxEpochs) && spec.maxEpochs >= 0, 'max_epochs', spec.maxEpochs, 'a number >= 0');
  check(spec.lora === undefined, 'lora', spec.lora, 'unset: online runs train all weights and push full safetensors (LoRA pushes are not implemented)');
  check(spec.gradAccumulationSteps === 0 || spec.gradAccumulationSteps === 1, 'grad_accumulation_steps', spec.gradAccumulationSteps, '0 or 1 (RL runs take one optimizer step per minibatch)');
  const o = spec.optimizer;
  check(o !== undefined && Number.isFinite(o.learningRate) && o.learningRate > 0, 'optimizer.learning_rate', o?.learningRate, 'a number > 0');
  const schedules: Record<number, LrSchedulerType> = { [LrSchedule.UNSPECIFIED]: 'constant', [LrSchedule.CONSTANT]: 'constant', [LrSchedule.LINEAR]: 'linear', [LrSchedule.COSINE]: 'cosine' };
  check(schedules[o!.schedule] !== undefined, 'optimizer.schedule', o!.schedule, 'LR_SCHEDULE_CONSTANT, LINEAR or COSINE');
  check(o!.minLearningRate === 0, 'optimizer.min_learning_rate', o!.minLearningRate, '0 (the shared schedules decay to 0)');
  check(isInt(o!.warmupSteps) && o!.warmupSteps >= 0, 'optimizer.warmup_steps', o!.warmupSteps, 'an integer >= 0');
  check(o!.weightDecay >= 0, 'optimizer.weight_decay', o!.weightDecay, 'a number >= 0');
  const beta1 = o!.beta1 ?? 0.9;
  const beta2 = o!.beta2 ?? 0.999;
  const epsilon = o!.epsilon ?? 1e-8;
  check(beta1 >= 0 && beta1 < 1, 'optimizer.beta1', beta1, 'a value in [0, 1)');
  check(beta2 >= 0 && beta2 < 1, 'optimizer.beta2', beta2, 'a value in [0, 1)');
  check(epsilon > 0, 'optimizer.epsilon', epsilon, 'a number > 0');
  check(o!.maxGradNorm >= 0, 'optimizer.max_grad_norm', o!.maxGradNorm, 'a number >= 0 (0 means no clipping)');
  check(isInt(spec.checkpointEverySteps) && spec.checkpointEverySteps >= 0, 'checkpoint_every_steps', spec.checkpointEverySteps, 'an integer >= 0');
  check(isInt(spec.keepCheckpoints) && spec.keepCheckpoints >= 0, 'keep_checkpoints', spec.keepCheckpoints, 'an integer >= 0');
  check(isInt(spec.logEverySteps) && spec.logEverySteps >= 0, 'log_every_steps', spec.logEverySteps, 'an integer >= 0');

  const s: PpoSpec | GrpoSpec = stage.value;
  const services = s.services;
  check(services !== undefined && services.samplerAddresses.length > 0, `${f}.services.sampler_addresses`, services?.samplerAddresses, 'at least one PolicySampler address');
  check(services!.rewardAddress !== '', `${f}.services.reward_address`, services!.rewardAddress, 'a RewardScorer address');
  check(s.rewardComponents.length > 0, `${f}.reward_components`, s.rewardComponents, 'at least one component');
  const kl = klOf(s.kl, `${f}.kl`, algorithm);
  if (kl.coefficient > 0) check(services!.referenceAddress !== '', `${f}.services.reference_address`, services!.referenceAddress, 'a ReferenceModel address (kl.coefficient is > 0)');
  const sampling = samplingOf(s.sampling, f);

  const common = {
    algorithm,
    runId: spec.runId === '' ? null : spec.runId,
    name: spec.name,
    baseModelDir: spec.baseModelDir,
    outputDir: spec.outputDir === '' ? 'runs' : spec.outputDir,
    datasetPath: d!.paths[0],
    promptField: d!.fields?.prompt || null,
    groundTruthField: d!.fields?.groundTruth || null,
    maxSamples: d!.maxSamples,
    seed: spec.seed,
    maxSteps: spec.maxSteps > 0 ? spec.maxSteps : null,
    maxEpochs: spec.maxEpochs > 0 ? spec.maxEpochs : 1,
    optimizer: { learningRate: o!.learningRate, schedule: schedules[o!.schedule], warmupSteps: o!.warmupSteps, weightDecay: o!.weightDecay, beta1, beta2, epsilon, maxGradNorm: o!.maxGradNorm > 0 ? o!.maxGradNorm : null },
    checkpointEverySteps: spec.checkpointEverySteps,
    keepCheckpoints: spec.keepCheckpoints > 0 ? spec.keepCheckpoints : null,
    resume: spec.resume,
    logEverySteps: spec.logEverySteps > 0 ? spec.logEverySteps : 1,
    samplers: [...services!.samplerAddresses],
    referenceAddress: services!.referenceAddress === '' ? null : services!.referenceAddress,
    rewardAddress: services!.rewardAddress,
    rewardComponents: s.rewardComponents,
    kl,
    sampling,
  };

  if (stage.$case === 'ppo') {
    const p = stage.value;
    check(isInt(p.rolloutBatchSize) && p.rolloutBatchSize >= 1, 'ppo.rollout_batch_size', p.rolloutBatchSize, 'an integer >= 1');
    check(isInt(p.samplesPerPrompt) && p.samplesPerPrompt >= 1, 'ppo.samples_per_prompt', p.samplesPerPrompt, 'an integer >= 1');
    check(isInt(p.ppoEpochs) && p.ppoEpochs >= 1, 'ppo.ppo_epochs', p.ppoEpochs, 'an integer >= 1');
    const total = p.rolloutBatchSize * p.samplesPerPrompt;
    check(isInt(p.minibatchSize) && p.minibatchSize >= 1 && total % p.minibatchSize === 0, 'ppo.minibatch_size', p.minibatchSize, `an integer >= 1 dividing rollout_batch_size * samples_per_prompt = ${total}`);
    if (p.dualClipC !== undefined) check(p.dualClipC > 1, 'ppo.dual_clip_c', p.dualClipC, 'a number > 1');
    check(p.valueClip >= 0, 'ppo.value_clip', p.valueClip, 'a number >= 0 (0 disables)');
    check(p.gamma >= 0 && p.gamma <= 1, 'ppo.gamma', p.gamma, 'a value in [0, 1]');
    check(p.gaeLambda >= 0 && p.gaeLambda <= 1, 'ppo.gae_lambda', p.gaeLambda, 'a value in [0, 1]');
    check(p.valueLossCoefficient >= 0, 'ppo.value_loss_coefficient', p.valueLossCoefficient, 'a number >= 0');
    check(p.entropyCoefficient >= 0, 'ppo.entropy_coefficient', p.entropyCoefficient, 'a number >= 0');
    return {
      ...common,
      promptsPerStep: p.rolloutBatchSize,
      samplesPerPrompt: p.samplesPerPrompt,
      epochs: p.ppoEpochs,
      minibatchSize: p.minibatchSize,
      ...clipsOf(p.clipLow, p.clipHigh, 'ppo'),
      dualClip: p.dualClipC ?? null,
      stale: staleOf(p.staleRollouts, p.maxStaleness, 'ppo'),
      ppo: {
        valueClip: p.valueClip > 0 ? p.valueClip : null,
        gamma: p.gamma,
        gaeLambda: p.gaeLambda,
        whitenAdvantages: p.whitenAdvantages,
        valueLossCoefficient: p.valueLossCoefficient,
        entropyCoefficient: p.entropyCoefficient,
        valueModelDir: p.valueModelDir === '' ? null : p.valueModelDir,
      },
      grpo: null,
    };
  }
  const g = stage.value;
  check(isInt(g.promptsPerStep) && g.promptsPerStep >= 1, 'grpo.prompts_per_step', g.promptsPerStep, 'an integer >= 1');
  check(isInt(g.groupSize) && g.groupSize >= 2, 'grpo.group_size', g.groupSize, 'an integer >= 2');
  check(isInt(g.updatesPerBatch) && g.updatesPerBatch >= 1, 'grpo.updates_per_batch', g.updatesPerBatch, 'an integer >= 1');
  const total = g.promptsPerStep * g.groupSize;
  check(isInt(g.minibatchSize) && g.minibatchSize >= 1 && total % g.minibatchSize === 0, 'grpo.minibatch_size', g.minibatchSize, `an integer >= 1 dividing prompts_per_step * group_size = ${total}`);
  const estimators: Record<number, GroupEstimator> = {
    [AdvantageEstimator.UNSPECIFIED]: 'grpo',
    [AdvantageEstimator.GRPO]: 'grpo',
    [AdvantageEstimator.DR_GRPO]: 'dr-grpo',
    [AdvantageEstimator.RLOO]: 'rloo',
    [AdvantageEstimator.REINFORCE_PP_BASELINE]: 'reinforce-pp-baseline',
  };
  check(estimators[g.advantageEstimator] !== undefined, 'grpo.advantage_estimator', g.advantageEstimator, 'ADVANTAGE_ESTIMATOR_GRPO, DR_GRPO, RLOO or REINFORCE_PP_BASELINE');
  const aggregations: Record<number, LossAggregation> = {
    [WireLossAggregation.UNSPECIFIED]: 'token-mean',
    [WireLossAggregation.TOKEN_MEAN]: 'token-mean',
    [WireLossAggregation.SEQUENCE_MEAN]: 'seq-mean-token-mean',
    [WireLossAggregation.SEQUENCE_SUM_NORM]: 'seq-mean-token-sum-norm',
  };
  check(aggregations[g.lossAggregation] !== undefined, 'grpo.loss_aggregation', g.lossAggregation, 'LOSS_AGGREGATION_TOKEN_MEAN, SEQUENCE_MEAN or SEQUENCE_SUM_NORM');
  if (aggregations[g.lossAggregation] === 'seq-mean-token-sum-norm') check(sampling.maxNewTokens !== undefined, 'grpo.sampling.max_new_tokens', sampling.maxNewTokens, 'set (LOSS_AGGREGATION_SEQUENCE_SUM_NORM divides by it)');
  return {
    ...common,
    promptsPerStep: g.promptsPerStep,
    samplesPerPrompt: g.groupSize,
    epochs: g.updatesPerBatch,
    minibatchSize: g.minibatchSize,
    ...clipsOf(g.clipLow, g.clipHigh, 'grpo'),
    dualClip: null,
    stale: staleOf(g.staleRollouts, g.maxStaleness, 'grpo'),
    ppo: null,
    grpo: { estimator: estimators[g.advantageEstimator], aggregation: aggregations[g.lossAggregation] },
  };
}
