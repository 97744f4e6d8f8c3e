/**
 * The Trainer's edge: a RunSpec becomes the run config of `posttrain <stage>
 * --config` (libs/training's schema, TRL's key names), validated there like
 * a config file, so both entry points accept the same content. Proto3 zeros
 * mean "default" as the .proto comments say; every error comes back as
 * INVALID_ARGUMENT naming the RunSpec field and the config key.
 */
import { RewardComponent, type GrpoSpec, type PpoSpec, type RunSpec, type SamplingParams } from '@posttrain/proto';
import { invalidArgument, type RpcError } from '@posttrain/rpc';
import { RlConfigError, resolveRlRunConfig, type RlRunConfig } from '@posttrain/rl';
import { parseRunConfig, RunConfigError, type RunConfig } from '@posttrain/training';
import { ADVANTAGE_ESTIMATOR, DATASET_FORMAT, DPO_LOSS_TYPE, GRPO_LOSS_TYPE, KL_ESTIMATOR, KL_PLACEMENT, LR_SCHEDULE, runSpecFieldOf, STALE_ROLLOUTS } from './wire-enums';

/** The config's stage name of a RunSpec stage. */
export function configStageOf(stage: NonNullable<RunSpec['stage']>['$case']): string {
  return stage === 'rewardModel' ? 'rm' : stage;
}

/** A proto3 number where 0 means "unset": undefined for 0 (the config's default applies), the value otherwise (checked by the schema). */
const unlessZero = (value: number): number | undefined => (value === 0 ? undefined : value);
/** A proto3 string where "" means "unset". */
const unlessEmpty = (value: string | undefined): string | null => (value ? value : null);
/** Leaves out keys whose value is undefined, so the config's defaults apply. */
const definedOnly = (keys: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(keys).filter(([, value]) => value !== undefined));

function datasetOf(spec: RunSpec): Record<string, unknown> {
  const dataset = spec.dataset;
  if (!dataset || dataset.paths.length === 0) throw invalidArgument('spec.dataset.paths', 'empty, expected at least one JSONL file');
  if (dataset.paths.length > 1) throw invalidArgument('spec.dataset.paths', `got ${dataset.paths.length} files; this trainer reads one training file per run (concatenate them first)`);
  if (dataset.evalPaths.length > 1) throw invalidArgument('spec.dataset.eval_paths', `got ${dataset.evalPaths.length} files, expected at most one`);
  if (dataset.maxSamples !== 0) throw invalidArgument('spec.dataset.max_samples', `got ${dataset.maxSamples}; limiting the sample count is not supported yet, expected 0`);
  const format = DATASET_FORMAT.nameOf(dataset.format, 'spec.dataset.format');
  const fields = dataset.fields;
  return definedOnly({
    train: dataset.paths[0],
    eval: dataset.evalPaths[0],
    eval_fraction: unlessZero(dataset.evalFraction),
    format: format === 'conversational' ? undefined : format,
    style: format === 'conversational' ? 'conversational' : undefined,
    fields: fields
      ? definedOnly(Object.fromEntries((['text', 'messages', 'prompt', 'completion', 'chosen', 'rejected'] as const).map((key) => [key, fields[key] || undefined]).concat([['ground_truth', fields.groundTruth || undefined]])))
      : undefined,
  });
}

function trainOf(spec: RunSpec, offline: boolean): Record<string, unknown> {
  const optimizer = spec.optimizer;
  if (optimizer && optimizer.minLearningRate !== 0) throw invalidArgument('spec.optimizer.min_learning_rate', `got ${optimizer.minLearningRate}; cosine decays to 0 here, expected 0`);
  return definedOnly({
    max_steps: unlessZero(spec.maxSteps),
    epochs: unlessZero(spec.maxEpochs),
    batch_size: offline ? spec.batchSize : undefined,
    gradient_accumulation_steps: spec.gradAccumulationSteps > 1 ? spec.gradAccumulationSteps : undefined,
    ...(optimizer
      ? {
          learning_rate: optimizer.learningRate,
          lr_scheduler: LR_SCHEDULE.nameOf(optimizer.schedule, 'spec.optimizer.schedule'),
          warmup_steps: unlessZero(optimizer.warmupSteps),
          warmup_ratio: unlessZero(optimizer.warmupRatio),
          weight_decay: unlessZero(optimizer.weightDecay),
          max_grad_norm: optimizer.maxGradNorm === 0 ? null : optimizer.maxGradNorm,
          adam_beta1: optimizer.beta1,
          adam_beta2: optimizer.beta2,
          adam_epsilon: optimizer.epsilon,
        }
      : {}),
    logging_steps: offline ? (unlessZero(spec.logEverySteps) ?? 1) : unlessZero(spec.logEverySteps),
    eval_steps: unlessZero(spec.evalEverySteps),
    save_steps: unlessZero(spec.checkpointEverySteps),
    save_total_limit: unlessZero(spec.keepCheckpoints),
  });
}

function samplingOf(sampling: SamplingParams | undefined): Record<string, unknown> {
  if (!sampling) return {};
  return definedOnly({ temperature: sampling.temperature, top_p: sampling.topP, top_k: unlessZero(sampling.topK), max_completion_length: sampling.maxNewTokens, stop: sampling.stop, stop_token_ids: sampling.stopTokenIds });
}

/** The keys PPO and GRPO share, from either stage message. */
function rlSharedOf(stageSpec: PpoSpec | GrpoSpec, section: string): Record<string, unknown> {
  const services = stageSpec.services;
  const kl = stageSpec.kl;
  return definedOnly({
    mini_batch_size: unlessZero(stageSpec.minibatchSize),
    kl_estimator: kl && KL_ESTIMATOR.nameOf(kl.estimator, `spec.${section}.kl.estimator`),
    kl_placement: kl && KL_PLACEMENT.nameOf(kl.placement, `spec.${section}.kl.placement`),
    kl_target: kl?.adaptiveTarget,
    kl_horizon: kl && unlessZero(kl.adaptiveHorizon),
    stale_rollouts: STALE_ROLLOUTS.nameOf(stageSpec.staleRollouts, `spec.${section}.stale_rollouts`),
    max_staleness: unlessZero(stageSpec.maxStaleness),
    missing_eos_penalty: stageSpec.missingEosPenalty,
    ...samplingOf(stageSpec.sampling),
    reward_components: stageSpec.rewardComponents.map((component) => RewardComponent.toJSON(component)),
    services: {
      sampler_addresses: services?.samplerAddresses ?? [],
      sampler_dns: unlessEmpty(services?.samplerDns),
      sampler_file: unlessEmpty(services?.samplerFile),
      sampler_refresh_seconds: services?.samplerRefreshSeconds ? services.samplerRefreshSeconds : null,
      reference_address: unlessEmpty(services?.referenceAddress),
      reward_address: unlessEmpty(services?.rewardAddress),
    },
  });
}

function stageSectionOf(stage: NonNullable<RunSpec['stage']>): Record<string, unknown> {
  switch (stage.$case) {
    case 'sft': {
      const sft = stage.value;
      return definedOnly({ max_length: unlessZero(sft.maxLength), packing: sft.packing, assistant_only_loss: sft.assistantOnlyLoss, completion_only_loss: sft.completionOnlyLoss });
    }
    case 'rewardModel': {
      const rm = stage.value;
      return definedOnly({ max_length: unlessZero(rm.maxLength), margin: rm.margin, center_rewards_coefficient: unlessZero(rm.centerRewardsCoefficient), normalize_reward: rm.normalizeReward });
    }
    case 'dpo': {
      const dpo = stage.value;
      if (dpo.reference?.$case === 'precomputedReferencePath') throw invalidArgument('spec.dpo.precomputed_reference_path', 'not supported yet: use reference_address (a ReferenceModel service) or leave it unset for a frozen local copy of base_model_dir');
      if (dpo.maxPromptLength) throw invalidArgument('spec.dpo.max_prompt_length', `got ${dpo.maxPromptLength}; only max_length is supported, expected 0`);
      return definedOnly({ max_length: unlessZero(dpo.maxLength), beta: dpo.beta, loss_type: DPO_LOSS_TYPE.nameOf(dpo.lossType, 'spec.dpo.loss_type'), label_smoothing: dpo.labelSmoothing, rpo_alpha: dpo.rpoAlpha });
    }
    case 'ppo': {
      const ppo = stage.value;
      return definedOnly({
        prompts_per_step: ppo.rolloutBatchSize,
        num_generations: ppo.samplesPerPrompt,
        num_ppo_epochs: ppo.ppoEpochs,
        kl_coef: unlessZero(ppo.kl?.coefficient ?? 0),
        cliprange: unlessZero(ppo.clipLow),
        cliprange_high: unlessZero(ppo.clipHigh),
        cliprange_value: unlessZero(ppo.valueClip),
        dual_clip_c: ppo.dualClipC,
        gamma: ppo.gamma,
        lam: ppo.gaeLambda,
        whiten_advantages: ppo.whitenAdvantages,
        vf_coef: ppo.valueLossCoefficient,
        entropy_coef: ppo.entropyCoefficient,
        value_model: unlessEmpty(ppo.valueModelDir),
        ptx_coef: unlessZero(ppo.ptxCoef),
        ptx_dataset: unlessEmpty(ppo.ptxDataset),
        ptx_batch_size: unlessZero(ppo.ptxBatchSize),
        ptx_max_length: unlessZero(ppo.ptxMaxLength),
        critic_learning_rate: ppo.criticLearningRate,
        freezing_actor_steps: ppo.freezingActorSteps,
        ...rlSharedOf(ppo, 'ppo'),
      });
    }
    case 'grpo': {
      const grpo = stage.value;
      return definedOnly({
        prompts_per_step: grpo.promptsPerStep,
        num_generations: grpo.groupSize,
        num_iterations: unlessZero(grpo.updatesPerBatch),
        beta: unlessZero(grpo.kl?.coefficient ?? 0),
        epsilon: unlessZero(grpo.clipLow),
        epsilon_high: unlessZero(grpo.clipHigh),
        advantage_estimator: ADVANTAGE_ESTIMATOR.nameOf(grpo.advantageEstimator, 'spec.grpo.advantage_estimator'),
        loss_type: GRPO_LOSS_TYPE.nameOf(grpo.lossAggregation, 'spec.grpo.loss_aggregation'),
        mask_truncated_completions: grpo.maskTruncatedCompletions,
        ...rlSharedOf(grpo, 'grpo'),
      });
    }
  }
}

/** An error of the config's validation as INVALID_ARGUMENT naming the RunSpec field the key came from. */
function atEdge(err: unknown, stage: string): RpcError {
  if (err instanceof RlConfigError) return invalidArgument(runSpecFieldOf(err.field, stage), err.message);
  if (err instanceof RunConfigError) {
    const problem = err.message.replace(/^spec: /, '');
    const key = /^([a-z_.\d[\]]+):/.exec(problem)?.[1] ?? '';
    return invalidArgument(key ? runSpecFieldOf(key, stage) : 'spec', problem);
  }
  throw err;
}

/**
 * A RunSpec of any stage as the validated run config (`outputDir` and `runId`
 * as the Trainer resolved them). Keys the RunSpec leaves at zero take the
 * config's defaults.
 */
export function runSpecToConfig(spec: RunSpec, outputDir: string, runId: string): RunConfig {
  const stage = spec.stage;
  if (!stage) throw invalidArgument('spec.stage', 'not set, expected one of sft, reward_model, dpo, ppo, grpo');
  const configStage = configStageOf(stage.$case);
  const offline = stage.$case !== 'ppo' && stage.$case !== 'grpo';
  const lora = spec.lora;
  const raw = definedOnly({
    stage: configStage,
    model: spec.baseModelDir,
    output_dir: outputDir,
    run_id: runId,
    name: spec.name || undefined,
    seed: spec.seed,
    resume: spec.resume,
    dataset: datasetOf(spec),
    train: trainOf(spec, offline),
    lora: lora ? definedOnly({ r: lora.rank, alpha: lora.alpha, dropout: lora.dropout, target_modules: lora.targetModules.length ? lora.targetModules : undefined }) : undefined,
    [configStage]: stageSectionOf(stage),
  });
  try {
    return parseRunConfig(raw, 'spec');
  } catch (err) {
    throw atEdge(err, configStage);
  }
}

/** The RL run a RunSpec of stage ppo or grpo asks for, validated as `posttrain ppo|grpo` validates its config. */
export function runSpecToRlRunConfig(spec: RunSpec, outputDir: string, runId: string): RlRunConfig {
  const config = runSpecToConfig(spec, outputDir, runId);
  try {
    return resolveRlRunConfig(config);
  } catch (err) {
    throw atEdge(err, config.stage);
  }
}
