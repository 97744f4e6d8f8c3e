/**
 * The knobs of an online RL run, resolved from a validated run config of
 * stage ppo or grpo (libs/training's schema; the Trainer converts its RunSpec
 * to that config first). What the schema cannot check alone is checked here,
 * once the services are known: the addresses and the reward components. Each
 * error names the config key, the value and what was expected.
 */
import type { KlEstimator, LossAggregation } from '@posttrain/algorithms';
import { RewardComponent } from '@posttrain/proto';
import { checkMessageJson } from '@posttrain/rpc';
import { GRPO_LOSS_AGGREGATIONS, type AdvantageEstimatorName, type LrSchedulerType, type RlSharedConfig, type RunConfig } from '@posttrain/training';
import type { SamplingParams } from '@posttrain/proto';
import type { StalePolicy } from './stale-rollouts';
import { parseDnsTarget, type SamplerSourceConfig } from './sampler-addresses';

export type GroupEstimator = AdvantageEstimatorName;

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
  /** The fixed list of sampler addresses; [] when the samplers come from sampler_dns or sampler_file. */
  samplers: string[];
  /** Where the sampler pool finds its replicas: the fixed list, a DNS name or a file, refreshed. */
  samplerSource: SamplerSourceConfig;
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
  /** Stale rollouts; maxStaleness >= 1 also makes the run asynchronous (generation that many steps ahead). */
  stale: { policy: StalePolicy; maxStaleness: number };
  /** TIS: advantages weighted by min(pi_trainer / pi_sampler, cap) on every token; null: off. */
  truncatedImportanceSampling: { cap: number } | null;
  /** Subtracted from the reward of a rollout that hit the length limit without a stop (TRL's missing_eos_penalty); null: none. */
  missingEosPenalty: number | null;
  /** Sampling parameters of the rollouts (seed and logprobs are set by the pool). */
  sampling: Omit<SamplingParams, 'seed' | 'logprobs'> & { temperature: number };
  ppo: { valueClip: number | null; gamma: number; gaeLambda: number; whitenAdvantages: boolean; valueLossCoefficient: number; entropyCoefficient: number; valueModelDir: string | null; ptx: PtxConfig | null; criticLearningRate: number | null; freezingActorSteps: number } | null;
  /** maskTruncated: rollouts cut at the length limit are left out of the loss (TRL's mask_truncated_completions). */
  grpo: { estimator: GroupEstimator; aggregation: LossAggregation; maskTruncated: boolean } | null;
}

/** PPO-ptx: the next-token loss on a pretraining mix, weighted by `coefficient`, in every policy update. */
export interface PtxConfig {
  coefficient: number;
  datasetPath: string;
  /** Rows per policy update; null: the minibatch's completions. */
  batchSize: number | null;
  maxLength: number;
}

/** A config key that is missing or out of range; the message names the key (`field`, a dotted config key path). */
export class RlConfigError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'RlConfigError';
  }
}

function rewardComponentsOf(components: readonly Record<string, unknown>[], section: string): RewardComponent[] {
  if (components.length === 0) throw new RlConfigError(`${section}.reward_components`, 'got [], expected at least one component');
  return components.map((component, i) => {
    const field = `${section}.reward_components[${i}]`;
    try {
      checkMessageJson('posttrain.v1.RewardComponent', component, field);
    } catch (err) {
      throw new RlConfigError(field, (err as Error).message.slice(field.length + 2));
    }
    return RewardComponent.fromJSON(component);
  });
}

function samplingOf(rl: RlSharedConfig): RlRunConfig['sampling'] {
  return { temperature: rl.temperature, topP: rl.top_p ?? undefined, topK: rl.top_k, maxNewTokens: rl.max_completion_length ?? undefined, stop: [...rl.stop], stopTokenIds: [...rl.stop_token_ids] };
}

/** Default of sampler_refresh_seconds. */
export const DEFAULT_SAMPLER_REFRESH_SECONDS = 10;

/** Exactly one of sampler_addresses, sampler_dns, sampler_file; sampler_refresh_seconds only with the last two. */
function samplerSourceOf(services: RlSharedConfig['services'], section: string): SamplerSourceConfig {
  const { sampler_addresses: addresses, sampler_dns: dns = null, sampler_file: file = null, sampler_refresh_seconds: refresh = null } = services;
  const named = [addresses.length > 0 && 'sampler_addresses', dns !== null && 'sampler_dns', file !== null && 'sampler_file'].filter((key): key is string => key !== false);
  if (named.length === 0) throw new RlConfigError(`${section}.sampler_addresses`, 'got [], expected at least one PolicySampler address (or sampler_dns, or sampler_file)');
  if (named.length > 1) throw new RlConfigError(`${section}.${named[1]}`, `set together with ${named[0]}; expected exactly one of sampler_addresses, sampler_dns, sampler_file`);
  if (addresses.length > 0) {
    if (refresh !== null) throw new RlConfigError(`${section}.sampler_refresh_seconds`, `got ${refresh}, expected null: a fixed sampler_addresses list is not refreshed (it applies to sampler_dns and sampler_file)`);
    const seen = new Set<string>();
    addresses.forEach((address, i) => {
      if (seen.has(address)) throw new RlConfigError(`${section}.sampler_addresses[${i}]`, `${JSON.stringify(address)} is listed twice`);
      seen.add(address);
    });
    return { kind: 'list', addresses: [...addresses] };
  }
  const refreshSeconds = refresh ?? DEFAULT_SAMPLER_REFRESH_SECONDS;
  if (dns !== null) {
    const target = parseDnsTarget(dns);
    if (!target) throw new RlConfigError(`${section}.sampler_dns`, `got ${JSON.stringify(dns)}, expected name:port (a headless Service and the samplers' port, e.g. "samplers.ns.svc:50051", or "dns:///samplers.ns.svc:50051")`);
    return { kind: 'dns', ...target, refreshSeconds };
  }
  return { kind: 'file', path: file!, refreshSeconds };
}

/** ptx_coef > 0 needs ptx_dataset, and ptx_dataset without a coefficient is a mistake, not a no-op. */
function ptxOf(ppo: NonNullable<RunConfig['ppo']>): PtxConfig | null {
  if (ppo.ptx_coef > 0 && ppo.ptx_dataset === null) throw new RlConfigError('ppo.ptx_dataset', `got null, expected a JSONL file of the pretraining mix ({"text"} lines, or SFT data): ptx_coef is ${ppo.ptx_coef}`);
  if (ppo.ptx_coef === 0 && ppo.ptx_dataset !== null) throw new RlConfigError('ppo.ptx_coef', `got 0 with ptx_dataset ${JSON.stringify(ppo.ptx_dataset)}, expected a weight > 0 for its next-token loss (or ptx_dataset null)`);
  if (ppo.ptx_coef === 0) return null;
  return { coefficient: ppo.ptx_coef, datasetPath: ppo.ptx_dataset!, batchSize: ppo.ptx_batch_size, maxLength: ppo.ptx_max_length };
}

/** freezing_actor_steps must leave the policy steps to train in (checked against max_steps when it is set). */
function frozenActorStepsOf(steps: number, maxSteps: number | null): number {
  if (maxSteps !== null && steps >= maxSteps) {
    throw new RlConfigError('ppo.freezing_actor_steps', `got ${steps} with train.max_steps ${maxSteps}, expected fewer than max_steps: the policy would never be trained`);
  }
  return steps;
}

/** Resolves a parsed run config (parseRunConfig, loadRunConfig) whose stage is ppo or grpo. */
export function resolveRlRunConfig(config: RunConfig): RlRunConfig {
  const algorithm = config.stage;
  if (algorithm !== 'ppo' && algorithm !== 'grpo') throw new RlConfigError('stage', `got ${JSON.stringify(algorithm)}, expected "ppo" or "grpo"`);
  const ppo = config.ppo;
  const grpo = config.grpo;
  const rl: RlSharedConfig = (ppo ?? grpo)!;
  const { services } = rl;
  const klCoefficient = ppo ? ppo.kl_coef : grpo!.beta;
  const samplerSource = samplerSourceOf(services, `${algorithm}.services`);
  if (services.reward_address === null) throw new RlConfigError(`${algorithm}.services.reward_address`, 'got null, expected a RewardScorer address');
  const rewardComponents = rewardComponentsOf(rl.reward_components, algorithm);
  if (klCoefficient > 0 && services.reference_address === null) {
    throw new RlConfigError(`${algorithm}.services.reference_address`, `got null, expected a ReferenceModel address (${ppo ? 'kl_coef' : 'beta'} is > 0)`);
  }
  const { train, dataset } = config;
  const completionsPerStep = rl.prompts_per_step * rl.num_generations;
  const clipLow = ppo ? ppo.cliprange : grpo!.epsilon;
  const common = {
    algorithm,
    runId: config.run_id,
    name: config.name ?? '',
    baseModelDir: config.model,
    outputDir: config.output_dir,
    datasetPath: dataset.train,
    promptField: dataset.fields.prompt,
    groundTruthField: dataset.fields.ground_truth,
    maxSamples: 0,
    seed: config.seed,
    maxSteps: train.max_steps,
    maxEpochs: train.epochs,
    optimizer: {
      learningRate: train.learning_rate,
      schedule: train.lr_scheduler,
      warmupSteps: train.warmup_steps,
      weightDecay: train.weight_decay,
      beta1: train.adam_beta1,
      beta2: train.adam_beta2,
      epsilon: train.adam_epsilon,
      maxGradNorm: train.max_grad_norm,
    },
    checkpointEverySteps: train.save_steps ?? 0,
    keepCheckpoints: train.save_total_limit,
    resume: config.resume,
    logEverySteps: train.logging_steps,
    samplers: [...services.sampler_addresses],
    samplerSource,
    referenceAddress: services.reference_address,
    rewardAddress: services.reward_address,
    rewardComponents,
    promptsPerStep: rl.prompts_per_step,
    samplesPerPrompt: rl.num_generations,
    minibatchSize: rl.mini_batch_size ?? completionsPerStep,
    clipLow,
    clipHigh: (ppo ? ppo.cliprange_high : grpo!.epsilon_high) ?? clipLow,
    kl: { coefficient: klCoefficient, adaptiveTarget: rl.kl_target, adaptiveHorizon: rl.kl_horizon, estimator: rl.kl_estimator, placement: rl.kl_placement },
    stale: { policy: rl.stale_rollouts, maxStaleness: rl.max_staleness },
    truncatedImportanceSampling: rl.importance_sampling_correction ? { cap: rl.importance_sampling_cap } : null,
    missingEosPenalty: rl.missing_eos_penalty,
    sampling: samplingOf(rl),
  };
  if (ppo) {
    return {
      ...common,
      epochs: ppo.num_ppo_epochs,
      dualClip: ppo.dual_clip_c,
      ppo: {
        valueClip: ppo.cliprange_value,
        gamma: ppo.gamma,
        gaeLambda: ppo.lam,
        whitenAdvantages: ppo.whiten_advantages,
        valueLossCoefficient: ppo.vf_coef,
        entropyCoefficient: ppo.entropy_coef,
        valueModelDir: ppo.value_model,
        ptx: ptxOf(ppo),
        criticLearningRate: ppo.critic_learning_rate,
        freezingActorSteps: frozenActorStepsOf(ppo.freezing_actor_steps, train.max_steps),
      },
      grpo: null,
    };
  }
  return {
    ...common,
    epochs: grpo!.num_iterations,
    dualClip: null,
    ppo: null,
    grpo: { estimator: grpo!.advantage_estimator, aggregation: GRPO_LOSS_AGGREGATIONS[grpo!.loss_type], maskTruncated: grpo!.mask_truncated_completions },
  };
}
