/**
 * The run config's types and the lists of values its enum keys allow. Each
 * list is written here once; the schema (run-config-schema.ts), the Trainer's
 * RunSpec conversion and libs/rl read them from here.
 */
import { DPO_LOSS_TYPES, KL_ESTIMATORS } from '@posttrain/algorithms';
import type { DpoLossType, KlEstimator, LossAggregation } from '@posttrain/algorithms';

export { DPO_LOSS_TYPES, KL_ESTIMATORS };

export const OFFLINE_STAGES = ['lm', 'sft', 'rm', 'dpo'] as const;
export const RL_STAGES = ['ppo', 'grpo'] as const;
export const STAGES = [...OFFLINE_STAGES, ...RL_STAGES] as const;
export type OfflineStage = (typeof OFFLINE_STAGES)[number];
export type RlStage = (typeof RL_STAGES)[number];
export type Stage = (typeof STAGES)[number];

export const LR_SCHEDULERS = ['constant', 'linear', 'cosine'] as const;
export type LrSchedulerType = (typeof LR_SCHEDULERS)[number];
export const DATA_FORMATS = ['language-modeling', 'prompt-completion', 'preference', 'implicit-preference', 'prompt-only'] as const;
export type DataFormat = (typeof DATA_FORMATS)[number];
export const DATA_STYLES = ['standard', 'conversational'] as const;
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

/** Where the KL term enters the objective: subtracted from the per-token reward (PPO's default) or added to the loss (GRPO's). */
export const KL_PLACEMENTS = ['reward', 'loss'] as const;
export type KlPlacement = (typeof KL_PLACEMENTS)[number];
/** What an RL run does with rollouts from older weights (see libs/rl's stale-rollouts.ts). */
export const STALE_ROLLOUT_POLICIES = ['drop', 'importance-correct'] as const;
export type StaleRolloutPolicy = (typeof STALE_ROLLOUT_POLICIES)[number];
/** GRPO-family advantages from a group's rewards: GRPO, Dr. GRPO, RLOO, the REINFORCE++ baseline. */
export const ADVANTAGE_ESTIMATORS = ['grpo', 'dr-grpo', 'rloo', 'reinforce-pp-baseline'] as const;
export type AdvantageEstimatorName = (typeof ADVANTAGE_ESTIMATORS)[number];
/** TRL's GRPOConfig.loss_type values and the loss aggregation each one is. */
export const GRPO_LOSS_AGGREGATIONS = { dapo: 'token-mean', grpo: 'seq-mean-token-mean', dr_grpo: 'seq-mean-token-sum-norm' } as const satisfies Record<string, LossAggregation>;
export type GrpoLossType = keyof typeof GRPO_LOSS_AGGREGATIONS;
export const GRPO_LOSS_TYPES = Object.keys(GRPO_LOSS_AGGREGATIONS) as GrpoLossType[];

/** A run_id: the run's directory name and its id on the Trainer service. */
export const RUN_ID_PATTERN = /^[a-z0-9_-]{1,64}$/;
export const RUN_ID_RULE = '1-64 characters of [a-z0-9_-]';

export interface DatasetConfig {
  /** JSONL file of training records (ppo, grpo: the prompts). */
  train: string;
  /** JSONL file of held-out records; null uses eval_fraction of train (or no evaluation). */
  eval: string | null;
  /** Share of train held out for evaluation when `eval` is null (a fixed, seeded choice of records). */
  eval_fraction: number;
  format: DataFormat | null;
  style: (typeof DATA_STYLES)[number] | null;
  /** JSON field names, when they differ from TRL's (text, messages, prompt, completion, chosen, rejected, ground_truth). */
  fields: { text: string | null; messages: string | null; prompt: string | null; completion: string | null; chosen: string | null; rejected: string | null; ground_truth: string | null };
  error_policy: 'fail' | 'skip';
  truncation: 'truncate' | 'drop';
  shuffle: boolean;
  drop_last: boolean;
}

export interface TrainConfig {
  /** Optimizer steps (ppo, grpo: rollout batches); null derives them from `epochs`. */
  max_steps: number | null;
  /** Passes over the data (whole for lm, sft, rm, dpo; ppo and grpo may pass over part of it). */
  epochs: number;
  batch_size: number;
  eval_batch_size: number | null;
  gradient_accumulation_steps: number;
  learning_rate: number;
  lr_scheduler: LrSchedulerType;
  warmup_steps: number;
  warmup_ratio: number;
  /** Global-norm clipping threshold; null turns clipping off. */
  max_grad_norm: number | null;
  weight_decay: number;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
  /** Steps with a NaN/inf loss or gradient are skipped; more than this many in a row stop the run. */
  max_consecutive_skips: number;
  logging_steps: number;
  /** Evaluate every this many steps (and at the end); null evaluates at the end only. */
  eval_steps: number | null;
  /** Checkpoint every this many steps (and at the end); null checkpoints at the end only. */
  save_steps: number | null;
  /** Keep at most this many checkpoints (oldest removed); null keeps all. */
  save_total_limit: number | null;
}

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  target_modules: string[];
}

export interface LmStageConfig {
  max_length: number;
  packing: boolean;
}

export interface SftStageConfig {
  max_length: number;
  packing: boolean;
  assistant_only_loss: boolean;
  completion_only_loss: boolean;
}

export interface RmStageConfig {
  max_length: number;
  /** Required reward gap in the Bradley-Terry loss (Llama 2's margin); 0 for none. */
  margin: number;
  /** TRL's center_rewards_coefficient; null for none. */
  center_rewards_coefficient: number | null;
  /**
   * OpenRLHF's normalize_reward: the saved model serves (score - mean) / std,
   * the mean and standard deviation of its scores on the eval split's chosen
   * and rejected replies. The statistics are recorded in config.json either
   * way (whenever there is an eval split); this only switches them on.
   */
  normalize_reward: boolean;
}

export interface DpoReferenceConfig {
  /** Reference model directory; null uses a frozen copy of the policy as loaded (TRL's default). */
  model: string | null;
  batch_size: number;
}

export interface DpoStageConfig {
  max_length: number;
  beta: number;
  loss_type: DpoLossType;
  label_smoothing: number;
  /** Weight of the chosen replies' mean token NLL added to the DPO loss (RPO; TRL's rpo_alpha); null = plain DPO. */
  rpo_alpha: number | null;
  reference: DpoReferenceConfig;
}

/** The serving tier an RL run drives; with none named, `posttrain ppo|grpo` starts them and the Trainer uses its own. */
export interface RlServicesConfig {
  /** A fixed list of PolicySampler addresses (host:port). */
  sampler_addresses: string[];
  /** host:port of a headless Service whose A records are the sampler replicas, re-resolved every sampler_refresh_seconds. */
  sampler_dns?: string | null;
  /** A file of sampler addresses (one host:port a line, # comments), re-read every sampler_refresh_seconds. */
  sampler_file?: string | null;
  /** How often sampler_dns or sampler_file is refreshed (seconds); null: 10. */
  sampler_refresh_seconds?: number | null;
  reference_address: string | null;
  reward_address: string | null;
}

/** The keys PPO and GRPO share: rollouts, KL to the reference, stale rollouts, sampling, rewards, services. */
export interface RlSharedConfig {
  /** Prompts per step (posttrain's): each step samples prompts_per_step x num_generations completions. */
  prompts_per_step: number;
  /** Completions per prompt (TRL's num_generations; GRPO's group size). */
  num_generations: number;
  /** Completions per optimizer step; null: the whole batch of a step. */
  mini_batch_size: number | null;
  kl_estimator: KlEstimator;
  kl_placement: KlPlacement;
  /** Target KL of the adaptive controller (Ziegler et al. 2019); null keeps the coefficient fixed. */
  kl_target: number | null;
  /** Horizon of the adaptive controller, in samples. */
  kl_horizon: number;
  stale_rollouts: StaleRolloutPolicy;
  /**
   * Most weights versions a rollout may lag behind. 0: synchronous (the samplers generate,
   * then the trainer trains); k >= 1: asynchronous, generation runs up to k steps ahead of training.
   */
  max_staleness: number;
  /**
   * Truncated importance sampling (TIS; TRL's vllm_importance_sampling_correction): every
   * token's advantage is weighted by min(pi_trainer / pi_sampler, importance_sampling_cap),
   * correcting for the sampler's policy differing from the trainer's (staleness, numerics).
   */
  importance_sampling_correction: boolean;
  importance_sampling_cap: number;
  temperature: number;
  top_p: number | null;
  top_k: number;
  /** Most tokens per completion; null: the sampler's limit. */
  max_completion_length: number | null;
  stop: string[];
  stop_token_ids: number[];
  /** TRL's missing_eos_penalty: subtracted from the reward of each completion that reached the length limit without a stop; null: none. */
  missing_eos_penalty: number | null;
  /** The reward: posttrain.v1.RewardComponent messages in their JSON form (rewards.proto). */
  reward_components: Record<string, unknown>[];
  services: RlServicesConfig;
}

export interface PpoStageConfig extends RlSharedConfig {
  num_ppo_epochs: number;
  /** KL coefficient (initial one with kl_target); 0 turns the penalty and the reference calls off. */
  kl_coef: number;
  cliprange: number;
  /** Upper clip epsilon; null: cliprange. */
  cliprange_high: number | null;
  /** Value clip epsilon; null: no value clipping. */
  cliprange_value: number | null;
  /** Dual-clip constant c > 1 (Ye et al. 2020); null: off. */
  dual_clip_c: number | null;
  gamma: number;
  lam: number;
  whiten_advantages: boolean;
  vf_coef: number;
  entropy_coef: number;
  /** Model directory initialising the critic; null: the policy's start model. */
  value_model: string | null;
  /** The critic's learning rate (OpenRLHF's critic_learning_rate), on train's schedule; null: train.learning_rate. */
  critic_learning_rate: number | null;
  /** Steps at the start in which only the critic trains (OpenRLHF's freezing_actor_steps): the policy stays the start model; 0: none. */
  freezing_actor_steps: number;
  /** PPO-ptx (InstructGPT's gamma, OpenRLHF's ptx_coef): weight of the next-token loss on ptx_dataset in each policy update; 0: off. */
  ptx_coef: number;
  /** The pretraining mix: JSONL of {"text"} documents (or SFT data); required when ptx_coef > 0. */
  ptx_dataset: string | null;
  /** Rows of ptx data per policy update; null: the minibatch's completions. */
  ptx_batch_size: number | null;
  /** ptx rows are cut to this many tokens. */
  ptx_max_length: number;
}

export interface GrpoStageConfig extends RlSharedConfig {
  /** Optimisation passes over each batch of rollouts (mu). */
  num_iterations: number;
  /** KL coefficient; 0 turns the penalty and the reference calls off. */
  beta: number;
  epsilon: number;
  /** Upper clip epsilon; null: epsilon. */
  epsilon_high: number | null;
  advantage_estimator: AdvantageEstimatorName;
  loss_type: GrpoLossType;
  /** TRL's mask_truncated_completions: completions cut at the length limit count in their group's advantages, not in the loss. */
  mask_truncated_completions: boolean;
}

export interface RunConfig {
  stage: Stage;
  /** Model directory (HF layout) to start from. */
  model: string;
  /** Runs are written to <output_dir>/<run_id>/. */
  output_dir: string;
  /** null names the run <stage>-<UTC timestamp>. */
  run_id: string | null;
  /** A human-readable name, recorded with the run. */
  name: string | null;
  seed: number;
  /** tfjs backend (see @posttrain/backend); null uses POSTTRAIN_BACKEND or automatic choice. */
  backend: string | null;
  /** Continue the run <output_dir>/<run_id> from its last checkpoint. */
  resume: boolean;
  dataset: DatasetConfig;
  train: TrainConfig;
  lora: LoraConfig | null;
  lm: LmStageConfig | null;
  sft: SftStageConfig | null;
  rm: RmStageConfig | null;
  dpo: DpoStageConfig | null;
  ppo: PpoStageConfig | null;
  grpo: GrpoStageConfig | null;
}

/** A config error: the message names the key path, the value and what was expected. */
export class RunConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunConfigError';
  }
}
