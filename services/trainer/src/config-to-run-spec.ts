/**
 * The RunSpec a client sends to run a run config on the Trainer: the inverse
 * of run-spec-to-config.ts, so that a config file and its RunSpec resolve to
 * the same run (the round-trip spec checks this for examples/configs/).
 * Keys a RunSpec has no field for (dataset.error_policy, train.eval_batch_size,
 * dpo.reference, ...) are refused unless they keep their defaults.
 */
import { RewardComponent, RunSpec, type SamplingParams } from '@posttrain/proto';
import { RL_STAGES, type RlSharedConfig, type RunConfig, type Stage } from '@posttrain/training';
import { ADVANTAGE_ESTIMATOR, DATASET_FORMAT, DPO_LOSS_TYPE, GRPO_LOSS_TYPE, KL_ESTIMATOR, KL_PLACEMENT, LR_SCHEDULE, STALE_ROLLOUTS } from './wire-enums';

type RunSpecStage = NonNullable<RunSpec['stage']>;

/** Keys without a RunSpec field, and the value each must keep. */
const UNREPRESENTABLE: readonly [string, (config: RunConfig) => unknown, unknown][] = [
  ['backend', (config) => config.backend, null],
  ['dataset.error_policy', (config) => config.dataset.error_policy, 'fail'],
  ['dataset.truncation', (config) => config.dataset.truncation, 'truncate'],
  ['dataset.shuffle', (config) => config.dataset.shuffle, true],
  ['dataset.drop_last', (config) => config.dataset.drop_last, false],
  ['train.eval_batch_size', (config) => config.train.eval_batch_size, null],
  ['train.max_consecutive_skips', (config) => config.train.max_consecutive_skips, 5],
  ['dpo.reference.model', (config) => config.dpo?.reference.model ?? null, null],
  ['dpo.reference.batch_size', (config) => config.dpo?.reference.batch_size ?? 8, 8],
];

function checkRepresentable(config: RunConfig): void {
  for (const [key, read, expected] of UNREPRESENTABLE) {
    const value = read(config);
    if (value !== expected) throw new Error(`${key}: a RunSpec has no field for it; expected ${JSON.stringify(expected)} (the default), got ${JSON.stringify(value)}`);
  }
  if (config.dataset.format === 'implicit-preference') throw new Error('dataset.format: a RunSpec has no "implicit-preference" format; expected it unset');
  if (config.lm) throw new Error('stage: the Trainer runs sft, rm, dpo, ppo and grpo, not "lm"');
}

function samplingOf(rl: RlSharedConfig): SamplingParams {
  return { temperature: rl.temperature, topP: rl.top_p ?? undefined, topK: rl.top_k, maxNewTokens: rl.max_completion_length ?? undefined, stop: rl.stop, stopTokenIds: rl.stop_token_ids, logprobs: true };
}

function rlSharedOf(rl: RlSharedConfig, klCoefficient: number) {
  return {
    services: {
      samplerAddresses: rl.services.sampler_addresses,
      samplerDns: rl.services.sampler_dns ?? '',
      samplerFile: rl.services.sampler_file ?? '',
      samplerRefreshSeconds: rl.services.sampler_refresh_seconds ?? 0,
      referenceAddress: rl.services.reference_address ?? '',
      rewardAddress: rl.services.reward_address ?? '',
    },
    rewardComponents: rl.reward_components.map((component) => RewardComponent.fromJSON(component)),
    minibatchSize: rl.mini_batch_size ?? 0,
    kl: { coefficient: klCoefficient, adaptiveTarget: rl.kl_target ?? undefined, adaptiveHorizon: rl.kl_horizon, estimator: KL_ESTIMATOR.valueOf(rl.kl_estimator), placement: KL_PLACEMENT.valueOf(rl.kl_placement) },
    staleRollouts: STALE_ROLLOUTS.valueOf(rl.stale_rollouts),
    maxStaleness: rl.max_staleness,
    sampling: samplingOf(rl),
    missingEosPenalty: rl.missing_eos_penalty ?? undefined,
  };
}

function stageOf(config: RunConfig): RunSpecStage {
  const { sft, rm, dpo, ppo, grpo } = config;
  if (sft) return { $case: 'sft', value: { maxLength: sft.max_length, packing: sft.packing, assistantOnlyLoss: sft.assistant_only_loss, completionOnlyLoss: sft.completion_only_loss } };
  if (rm) return { $case: 'rewardModel', value: { maxLength: rm.max_length, margin: rm.margin, centerRewardsCoefficient: rm.center_rewards_coefficient ?? 0, normalizeReward: rm.normalize_reward } };
  if (dpo) return { $case: 'dpo', value: { maxLength: dpo.max_length, beta: dpo.beta, lossType: DPO_LOSS_TYPE.valueOf(dpo.loss_type), labelSmoothing: dpo.label_smoothing, maxPromptLength: 0, ...(dpo.rpo_alpha !== null ? { rpoAlpha: dpo.rpo_alpha } : {}) } };
  if (ppo) {
    return {
      $case: 'ppo',
      value: {
        ...rlSharedOf(ppo, ppo.kl_coef),
        rolloutBatchSize: ppo.prompts_per_step,
        samplesPerPrompt: ppo.num_generations,
        ppoEpochs: ppo.num_ppo_epochs,
        clipLow: ppo.cliprange,
        clipHigh: ppo.cliprange_high ?? 0,
        dualClipC: ppo.dual_clip_c ?? undefined,
        valueClip: ppo.cliprange_value ?? 0,
        gamma: ppo.gamma,
        gaeLambda: ppo.lam,
        whitenAdvantages: ppo.whiten_advantages,
        valueLossCoefficient: ppo.vf_coef,
        entropyCoefficient: ppo.entropy_coef,
        valueModelDir: ppo.value_model ?? '',
        ptxCoef: ppo.ptx_coef,
        ptxDataset: ppo.ptx_dataset ?? '',
        ptxBatchSize: ppo.ptx_batch_size ?? 0,
        ptxMaxLength: ppo.ptx_max_length,
        criticLearningRate: ppo.critic_learning_rate ?? undefined,
        freezingActorSteps: ppo.freezing_actor_steps,
      },
    };
  }
  return {
    $case: 'grpo',
    value: {
      ...rlSharedOf(grpo!, grpo!.beta),
      promptsPerStep: grpo!.prompts_per_step,
      groupSize: grpo!.num_generations,
      updatesPerBatch: grpo!.num_iterations,
      clipLow: grpo!.epsilon,
      clipHigh: grpo!.epsilon_high ?? 0,
      advantageEstimator: ADVANTAGE_ESTIMATOR.valueOf(grpo!.advantage_estimator),
      lossAggregation: GRPO_LOSS_TYPE.valueOf(grpo!.loss_type),
      maskTruncatedCompletions: grpo!.mask_truncated_completions,
    },
  };
}

/** The RunSpec of a validated run config (parseRunConfig, loadRunConfig); throws naming a key a RunSpec cannot carry. */
export function configToRunSpec(config: RunConfig): RunSpec {
  checkRepresentable(config);
  const { dataset, train, lora } = config;
  const online = (RL_STAGES as readonly Stage[]).includes(config.stage);
  const fields = dataset.fields;
  return RunSpec.fromPartial({
    runId: config.run_id ?? '',
    name: config.name ?? '',
    baseModelDir: config.model,
    outputDir: config.output_dir,
    dataset: {
      paths: [dataset.train],
      format: DATASET_FORMAT.valueOf(dataset.style === 'conversational' ? 'conversational' : dataset.format),
      fields: { text: fields.text ?? '', prompt: fields.prompt ?? '', completion: fields.completion ?? '', messages: fields.messages ?? '', chosen: fields.chosen ?? '', rejected: fields.rejected ?? '', groundTruth: fields.ground_truth ?? '', margin: '' },
      evalPaths: dataset.eval === null ? [] : [dataset.eval],
      evalFraction: dataset.eval_fraction,
    },
    seed: config.seed,
    maxSteps: train.max_steps ?? 0,
    maxEpochs: train.epochs,
    batchSize: online ? 0 : train.batch_size,
    gradAccumulationSteps: train.gradient_accumulation_steps,
    optimizer: {
      learningRate: train.learning_rate,
      schedule: LR_SCHEDULE.valueOf(train.lr_scheduler),
      warmupSteps: train.warmup_steps,
      warmupRatio: train.warmup_ratio,
      weightDecay: train.weight_decay,
      beta1: train.adam_beta1,
      beta2: train.adam_beta2,
      epsilon: train.adam_epsilon,
      maxGradNorm: train.max_grad_norm ?? 0,
    },
    lora: lora ? { rank: lora.r, alpha: lora.alpha, dropout: lora.dropout, targetModules: lora.target_modules } : undefined,
    checkpointEverySteps: train.save_steps ?? 0,
    keepCheckpoints: train.save_total_limit ?? 0,
    resume: config.resume,
    evalEverySteps: train.eval_steps ?? 0,
    logEverySteps: train.logging_steps,
    stage: stageOf(config),
  });
}
