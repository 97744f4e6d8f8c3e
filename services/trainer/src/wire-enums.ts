/**
 * The RunSpec's proto enums and the run config's names for them, one table
 * each, read both ways: RunSpec -> config at the Trainer's edge, and
 * config -> RunSpec for a client that submits a config.
 */
import { AdvantageEstimator, DatasetFormat, DpoLossType, KlEstimator, KlPlacement, LossAggregation, LrSchedule, StaleRolloutPolicy } from '@posttrain/proto';
import { invalidArgument } from '@posttrain/rpc';

/** A proto enum's named values and the config's names; UNSPECIFIED (0) maps to no name (the config's default). */
export class WireEnum<Name extends string> {
  private readonly byNumber: Map<number, Name>;
  constructor(
    private readonly protoEnum: Record<string | number, string | number>,
    pairs: readonly (readonly [number, Name])[],
  ) {
    this.byNumber = new Map(pairs);
  }

  /** The config's name of a wire value; undefined for UNSPECIFIED. A value outside the .proto's list (proto3 keeps those) is refused, not read as the default. */
  nameOf(value: number, field: string): Name | undefined {
    if (value === 0) return undefined;
    const name = this.byNumber.get(value);
    if (name !== undefined) return name;
    const known = Object.keys(this.protoEnum).filter((key) => /^\d+$/.test(key) && Number(key) >= 0);
    throw invalidArgument(field, `got ${value}, expected one of ${known.join(', ')}`);
  }

  /** The wire value of a config name; 0 (UNSPECIFIED) for none. */
  valueOf(name: string | null): number {
    if (name === null) return 0;
    for (const [value, known] of this.byNumber) if (known === name) return value;
    throw new Error(`no ${JSON.stringify(name)} among ${[...this.byNumber.values()].join(', ')}`);
  }
}

export const LR_SCHEDULE = new WireEnum(LrSchedule, [
  [LrSchedule.CONSTANT, 'constant'],
  [LrSchedule.LINEAR, 'linear'],
  [LrSchedule.COSINE, 'cosine'],
] as const);
export const DATASET_FORMAT = new WireEnum(DatasetFormat, [
  [DatasetFormat.LANGUAGE_MODELING, 'language-modeling'],
  [DatasetFormat.PROMPT_COMPLETION, 'prompt-completion'],
  [DatasetFormat.CONVERSATIONAL, 'conversational'],
  [DatasetFormat.PREFERENCE, 'preference'],
  [DatasetFormat.PROMPT_ONLY, 'prompt-only'],
] as const);
export const DPO_LOSS_TYPE = new WireEnum(DpoLossType, [
  [DpoLossType.SIGMOID, 'sigmoid'],
  [DpoLossType.IPO, 'ipo'],
  [DpoLossType.HINGE, 'hinge'],
  [DpoLossType.ROBUST, 'robust'],
] as const);
export const KL_ESTIMATOR = new WireEnum(KlEstimator, [
  [KlEstimator.K1, 'k1'],
  [KlEstimator.K2, 'k2'],
  [KlEstimator.K3, 'k3'],
] as const);
export const KL_PLACEMENT = new WireEnum(KlPlacement, [
  [KlPlacement.REWARD, 'reward'],
  [KlPlacement.LOSS, 'loss'],
] as const);
export const STALE_ROLLOUTS = new WireEnum(StaleRolloutPolicy, [
  [StaleRolloutPolicy.DROP, 'drop'],
  [StaleRolloutPolicy.IMPORTANCE_CORRECT, 'importance-correct'],
] as const);
export const ADVANTAGE_ESTIMATOR = new WireEnum(AdvantageEstimator, [
  [AdvantageEstimator.GRPO, 'grpo'],
  [AdvantageEstimator.DR_GRPO, 'dr-grpo'],
  [AdvantageEstimator.RLOO, 'rloo'],
  [AdvantageEstimator.REINFORCE_PP_BASELINE, 'reinforce-pp-baseline'],
] as const);
export const GRPO_LOSS_TYPE = new WireEnum(LossAggregation, [
  [LossAggregation.TOKEN_MEAN, 'dapo'],
  [LossAggregation.SEQUENCE_MEAN, 'grpo'],
  [LossAggregation.SEQUENCE_SUM_NORM, 'dr_grpo'],
] as const);

/** Run config key paths (a key, or a prefix ending in ".") and the RunSpec fields they come from; a `${stage}` prefix is the stage's section. */
export const RUN_SPEC_FIELD_OF_KEY: readonly (readonly [string, string])[] = [
  ['model', 'base_model_dir'],
  ['dataset.train', 'dataset.paths'],
  ['dataset.eval', 'dataset.eval_paths'],
  ['dataset.style', 'dataset.format'],
  ['train.max_steps', 'max_steps'],
  ['train.epochs', 'max_epochs'],
  ['train.batch_size', 'batch_size'],
  ['train.gradient_accumulation_steps', 'grad_accumulation_steps'],
  ['train.learning_rate', 'optimizer.learning_rate'],
  ['train.lr_scheduler', 'optimizer.schedule'],
  ['train.warmup_steps', 'optimizer.warmup_steps'],
  ['train.warmup_ratio', 'optimizer.warmup_ratio'],
  ['train.weight_decay', 'optimizer.weight_decay'],
  ['train.max_grad_norm', 'optimizer.max_grad_norm'],
  ['train.adam_beta1', 'optimizer.beta1'],
  ['train.adam_beta2', 'optimizer.beta2'],
  ['train.adam_epsilon', 'optimizer.epsilon'],
  ['train.logging_steps', 'log_every_steps'],
  ['train.eval_steps', 'eval_every_steps'],
  ['train.save_steps', 'checkpoint_every_steps'],
  ['train.save_total_limit', 'keep_checkpoints'],
  ['lora.r', 'lora.rank'],
  ['rm.', 'reward_model.'],
  ['ppo.prompts_per_step', 'ppo.rollout_batch_size'],
  ['ppo.num_generations', 'ppo.samples_per_prompt'],
  ['ppo.num_ppo_epochs', 'ppo.ppo_epochs'],
  ['ppo.kl_coef', 'ppo.kl.coefficient'],
  ['ppo.cliprange', 'ppo.clip_low'],
  ['ppo.cliprange_high', 'ppo.clip_high'],
  ['ppo.cliprange_value', 'ppo.value_clip'],
  ['ppo.lam', 'ppo.gae_lambda'],
  ['ppo.vf_coef', 'ppo.value_loss_coefficient'],
  ['ppo.entropy_coef', 'ppo.entropy_coefficient'],
  ['ppo.value_model', 'ppo.value_model_dir'],
  ['grpo.num_generations', 'grpo.group_size'],
  ['grpo.num_iterations', 'grpo.updates_per_batch'],
  ['grpo.beta', 'grpo.kl.coefficient'],
  ['grpo.epsilon', 'grpo.clip_low'],
  ['grpo.epsilon_high', 'grpo.clip_high'],
  ['grpo.loss_type', 'grpo.loss_aggregation'],
  ['${stage}.mini_batch_size', '${stage}.minibatch_size'],
  ['${stage}.kl_estimator', '${stage}.kl.estimator'],
  ['${stage}.kl_placement', '${stage}.kl.placement'],
  ['${stage}.kl_target', '${stage}.kl.adaptive_target'],
  ['${stage}.kl_horizon', '${stage}.kl.adaptive_horizon'],
  ['${stage}.temperature', '${stage}.sampling.temperature'],
  ['${stage}.top_p', '${stage}.sampling.top_p'],
  ['${stage}.top_k', '${stage}.sampling.top_k'],
  ['${stage}.max_completion_length', '${stage}.sampling.max_new_tokens'],
  ['${stage}.stop', '${stage}.sampling.stop'],
  ['${stage}.stop_token_ids', '${stage}.sampling.stop_token_ids'],
];

/** The RunSpec field (spec.<path>) a run config key path came from. */
export function runSpecFieldOf(key: string, stage: string): string {
  for (const [configKey, specField] of RUN_SPEC_FIELD_OF_KEY) {
    const from = configKey.replace('${stage}', stage);
    const to = specField.replace('${stage}', stage);
    if (key === from || (from.endsWith('.') && key.startsWith(from))) return `spec.${to}${key.slice(from.length)}`;
    if (key.startsWith(`${from}[`)) return `spec.${to}${key.slice(from.length)}`;
  }
  return `spec.${key}`;
}
