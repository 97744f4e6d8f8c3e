/**
 * The schema of a run config: every key, its type, range and default. It
 * drives parsing (run-config.ts) and `--set key=value` overrides
 * (config-overrides.ts), so an override is typed like the file.
 *
 * A key or section with `stages` applies to those stages only: set for
 * another stage it is an error, unset it keeps its default (a section: null).
 * `rl` gives a key a different default for ppo and grpo (or makes it
 * required there), where their RunSpec defaults always differed from TRL's.
 */
import {
  ADVANTAGE_ESTIMATORS,
  DATA_FORMATS,
  DATA_STYLES,
  DPO_LOSS_TYPES,
  GRPO_LOSS_TYPES,
  KL_ESTIMATORS,
  KL_PLACEMENTS,
  LORA_TARGETS,
  LR_SCHEDULERS,
  OFFLINE_STAGES,
  RL_STAGES,
  STAGES,
  STALE_ROLLOUT_POLICIES,
  type RlStage,
  type Stage,
} from './run-config-types';

/** The default of a key for ppo and grpo, where it differs: a value, or none (the key is required). */
export type RlDefault = { default: number | string | null } | { required: true };

interface Applies {
  /** The stages the key applies to; all when unset. */
  stages?: readonly Stage[];
  /** Why the key does not apply to the other stages, appended to the error. */
  stagesNote?: string;
  rl?: RlDefault;
}

export type Field = Applies &
  (
    | { kind: 'int'; min: number; max?: number; nullable?: boolean; default?: number | null; required?: boolean }
    | { kind: 'number'; min?: number; max?: number; minExclusive?: number; maxExclusive?: number; nullable?: boolean; default?: number | null }
    | { kind: 'bool'; default: boolean }
    | { kind: 'string'; nullable?: boolean; default?: string | null; required?: boolean }
    | { kind: 'enum'; values: readonly string[]; nullable?: boolean; default?: string | null; required?: boolean }
    | { kind: 'list'; of: 'string' | 'int' | 'object'; values?: readonly string[]; minItems: 0 | 1; unique?: boolean; default: unknown[] }
    | { kind: 'section'; fields: Record<string, Field>; nullable?: boolean }
  );
export type SectionField = Extract<Field, { kind: 'section' }>;

const maxLength = (defaultLength: number): Field => ({ kind: 'int', min: 2, default: defaultLength });
const nullableString = (extra: Applies = {}): Field => ({ kind: 'string', nullable: true, default: null, ...extra });
const offlineOnly = (stagesNote?: string): Applies => ({ stages: OFFLINE_STAGES, ...(stagesNote ? { stagesNote } : {}) });
const rlOnly: Applies = { stages: RL_STAGES };
const positiveIntOrNull: Field = { kind: 'int', min: 1, nullable: true, default: null };

/**
 * The keys PPO and GRPO share, with each algorithm's defaults: k1 KL
 * subtracted from the reward for PPO, k3 KL in the loss for GRPO.
 */
function rlSharedFields(stage: RlStage): Record<string, Field> {
  return {
    prompts_per_step: { kind: 'int', min: 1, required: true },
    num_generations: { kind: 'int', min: stage === 'grpo' ? 2 : 1, required: true },
    mini_batch_size: positiveIntOrNull,
    kl_estimator: { kind: 'enum', values: KL_ESTIMATORS, default: stage === 'ppo' ? 'k1' : 'k3' },
    kl_placement: { kind: 'enum', values: KL_PLACEMENTS, default: stage === 'ppo' ? 'reward' : 'loss' },
    kl_target: { kind: 'number', minExclusive: 0, nullable: true, default: null },
    kl_horizon: { kind: 'int', min: 0, default: 0 },
    stale_rollouts: { kind: 'enum', values: STALE_ROLLOUT_POLICIES, default: 'drop' },
    max_staleness: { kind: 'int', min: 0, default: 0 },
    importance_sampling_correction: { kind: 'bool', default: false },
    importance_sampling_cap: { kind: 'number', min: 1, default: 2 },
    temperature: { kind: 'number', minExclusive: 0, default: 1 },
    top_p: { kind: 'number', minExclusive: 0, max: 1, nullable: true, default: null },
    top_k: { kind: 'int', min: 0, default: 0 },
    max_completion_length: positiveIntOrNull,
    stop: { kind: 'list', of: 'string', minItems: 0, default: [] },
    stop_token_ids: { kind: 'list', of: 'int', minItems: 0, default: [] },
    // TRL's missing_eos_penalty: subtracted from the reward of a completion that reached
    // max_completion_length without a stop (a reward model scores a cut reply as if it had ended).
    missing_eos_penalty: { kind: 'number', min: 0, nullable: true, default: null },
    reward_components: { kind: 'list', of: 'object', minItems: 0, default: [] },
    services: {
      kind: 'section',
      fields: {
        // Exactly one source of sampler addresses: a fixed list, a DNS name re-resolved, or a file re-read (rl-run-config.ts checks).
        sampler_addresses: { kind: 'list', of: 'string', minItems: 0, default: [] },
        sampler_dns: nullableString(),
        sampler_file: nullableString(),
        sampler_refresh_seconds: { kind: 'number', minExclusive: 0, nullable: true, default: null },
        reference_address: nullableString(),
        reward_address: nullableString(),
      },
    },
  };
}

const clipEpsilon: Field = { kind: 'number', minExclusive: 0, maxExclusive: 1, default: 0.2 };
const upperClipEpsilon: Field = { kind: 'number', minExclusive: 0, nullable: true, default: null };
const nonNegative = (defaultValue: number): Field => ({ kind: 'number', min: 0, default: defaultValue });

/** The schema of a run config. */
export const RUN_CONFIG_SCHEMA: Record<string, Field> = {
  stage: { kind: 'enum', values: STAGES, required: true },
  model: { kind: 'string', required: true },
  output_dir: { kind: 'string', default: 'runs' },
  run_id: nullableString(),
  name: nullableString(),
  seed: { kind: 'int', min: 0, max: 0xffffffff, default: 42, rl: { default: 0 } },
  backend: nullableString(offlineOnly('online runs use POSTTRAIN_BACKEND')),
  resume: { kind: 'bool', default: false },
  dataset: {
    kind: 'section',
    fields: {
      train: { kind: 'string', required: true },
      eval: nullableString(offlineOnly('online runs evaluate through their rewards')),
      eval_fraction: { kind: 'number', min: 0, maxExclusive: 1, default: 0, ...offlineOnly('online runs evaluate through their rewards') },
      format: { kind: 'enum', values: DATA_FORMATS, nullable: true, default: null },
      style: { kind: 'enum', values: DATA_STYLES, nullable: true, default: null, ...offlineOnly() },
      fields: {
        kind: 'section',
        fields: {
          ...Object.fromEntries(['text', 'messages'].map((key) => [key, nullableString(offlineOnly())])),
          prompt: nullableString(),
          ...Object.fromEntries(['completion', 'chosen', 'rejected'].map((key) => [key, nullableString(offlineOnly())])),
          ground_truth: nullableString(rlOnly),
        },
      },
      error_policy: { kind: 'enum', values: ['fail', 'skip'], default: 'fail', ...offlineOnly() },
      truncation: { kind: 'enum', values: ['truncate', 'drop'], default: 'truncate', ...offlineOnly() },
      shuffle: { kind: 'bool', default: true, ...offlineOnly() },
      drop_last: { kind: 'bool', default: false, ...offlineOnly() },
    },
  },
  train: {
    kind: 'section',
    fields: {
      max_steps: positiveIntOrNull,
      epochs: { kind: 'number', minExclusive: 0, default: 1 },
      batch_size: { kind: 'int', min: 1, default: 8, ...offlineOnly('ppo and grpo batch by prompts_per_step and mini_batch_size in their section') },
      eval_batch_size: { ...positiveIntOrNull, ...offlineOnly() },
      gradient_accumulation_steps: { kind: 'int', min: 1, default: 1, ...offlineOnly('online runs take one optimizer step per mini-batch') },
      learning_rate: { kind: 'number', minExclusive: 0, default: 5e-5, rl: { required: true } },
      lr_scheduler: { kind: 'enum', values: LR_SCHEDULERS, default: 'linear', rl: { default: 'constant' } },
      warmup_steps: { kind: 'int', min: 0, default: 0 },
      warmup_ratio: { kind: 'number', min: 0, maxExclusive: 1, default: 0, ...offlineOnly() },
      max_grad_norm: { kind: 'number', minExclusive: 0, nullable: true, default: 1, rl: { default: null } },
      weight_decay: nonNegative(0),
      adam_beta1: { kind: 'number', min: 0, maxExclusive: 1, default: 0.9 },
      adam_beta2: { kind: 'number', min: 0, maxExclusive: 1, default: 0.999 },
      adam_epsilon: { kind: 'number', minExclusive: 0, default: 1e-8 },
      max_consecutive_skips: { kind: 'int', min: 0, default: 5, ...offlineOnly() },
      logging_steps: { kind: 'int', min: 1, default: 10, rl: { default: 1 } },
      eval_steps: { ...positiveIntOrNull, ...offlineOnly('online runs evaluate through their rewards') },
      save_steps: positiveIntOrNull,
      save_total_limit: positiveIntOrNull,
    },
  },
  lora: {
    kind: 'section',
    nullable: true,
    ...offlineOnly('online runs train all weights and push full safetensors; LoRA pushes are not implemented'),
    fields: {
      r: { kind: 'int', min: 1, default: 8 },
      alpha: { kind: 'number', minExclusive: 0, default: 16 },
      dropout: { kind: 'number', min: 0, maxExclusive: 1, default: 0 },
      target_modules: { kind: 'list', of: 'string', values: LORA_TARGETS, minItems: 1, unique: true, default: ['q_proj', 'v_proj'] },
    },
  },
  lm: { kind: 'section', stages: ['lm'], fields: { max_length: maxLength(512), packing: { kind: 'bool', default: true } } },
  sft: {
    kind: 'section',
    stages: ['sft'],
    fields: {
      max_length: maxLength(1024),
      packing: { kind: 'bool', default: false },
      assistant_only_loss: { kind: 'bool', default: true },
      completion_only_loss: { kind: 'bool', default: true },
    },
  },
  rm: {
    kind: 'section',
    stages: ['rm'],
    fields: {
      max_length: maxLength(1024),
      margin: { kind: 'number', default: 0 },
      center_rewards_coefficient: { kind: 'number', min: 0, nullable: true, default: null },
      normalize_reward: { kind: 'bool', default: false },
    },
  },
  dpo: {
    kind: 'section',
    stages: ['dpo'],
    fields: {
      max_length: maxLength(1024),
      beta: { kind: 'number', minExclusive: 0, default: 0.1 },
      loss_type: { kind: 'enum', values: DPO_LOSS_TYPES, default: 'sigmoid' },
      label_smoothing: { kind: 'number', min: 0, max: 0.5, default: 0 },
      rpo_alpha: { kind: 'number', min: 0, nullable: true, default: null },
      reference: {
        kind: 'section',
        fields: { model: nullableString(), batch_size: { kind: 'int', min: 1, default: 8 } },
      },
    },
  },
  ppo: {
    kind: 'section',
    stages: ['ppo'],
    fields: {
      ...rlSharedFields('ppo'),
      num_ppo_epochs: { kind: 'int', min: 1, required: true },
      kl_coef: nonNegative(0),
      cliprange: clipEpsilon,
      cliprange_high: upperClipEpsilon,
      cliprange_value: { kind: 'number', minExclusive: 0, nullable: true, default: null },
      dual_clip_c: { kind: 'number', minExclusive: 1, nullable: true, default: null },
      gamma: { kind: 'number', min: 0, max: 1, default: 0 },
      lam: { kind: 'number', min: 0, max: 1, default: 0 },
      whiten_advantages: { kind: 'bool', default: false },
      vf_coef: nonNegative(0),
      entropy_coef: nonNegative(0),
      value_model: nullableString(),
      // OpenRLHF's critic_learning_rate and freezing_actor_steps: a critic that learns faster than the
      // policy, and steps that train the critic alone before the policy moves.
      critic_learning_rate: { kind: 'number', minExclusive: 0, nullable: true, default: null },
      freezing_actor_steps: { kind: 'int', min: 0, default: 0 },
      // PPO-ptx (Ouyang et al. 2022): ptx_coef x the next-token loss on ptx_dataset joins every policy update.
      ptx_coef: nonNegative(0),
      ptx_dataset: nullableString(),
      ptx_batch_size: positiveIntOrNull,
      ptx_max_length: maxLength(512),
    },
  },
  grpo: {
    kind: 'section',
    stages: ['grpo'],
    fields: {
      ...rlSharedFields('grpo'),
      num_iterations: { kind: 'int', min: 1, default: 1 },
      beta: nonNegative(0),
      epsilon: clipEpsilon,
      epsilon_high: upperClipEpsilon,
      advantage_estimator: { kind: 'enum', values: ADVANTAGE_ESTIMATORS, default: 'grpo' },
      loss_type: { kind: 'enum', values: GRPO_LOSS_TYPES, default: 'dapo' },
      // TRL's mask_truncated_completions (DAPO's overlong filtering): completions cut at
      // max_completion_length count in their group's advantages but not in the loss.
      mask_truncated_completions: { kind: 'bool', default: false },
    },
  },
};

/** The field at a dotted key path, or null when there is none. */
export function fieldAt(path: readonly string[]): Field | null {
  let fields: Record<string, Field> = RUN_CONFIG_SCHEMA;
  let field: Field | null = null;
  for (let i = 0; i < path.length; i++) {
    field = fields[path[i]] ?? null;
    if (field === null) return null;
    if (i < path.length - 1) {
      if (field.kind !== 'section') return null;
      fields = field.fields;
    }
  }
  return field;
}

const quoteAll = (values: readonly string[]) => values.map((value) => JSON.stringify(value)).join(', ');

/** What a field accepts, in words, for error messages. */
export function describeField(field: Field): string {
  let description: string;
  switch (field.kind) {
    case 'int':
      description = `an integer >= ${field.min}${field.max !== undefined ? ` and <= ${field.max}` : ''}`;
      break;
    case 'number': {
      const parts: string[] = [];
      if (field.min !== undefined) parts.push(`>= ${field.min}`);
      if (field.minExclusive !== undefined) parts.push(`> ${field.minExclusive}`);
      if (field.max !== undefined) parts.push(`<= ${field.max}`);
      if (field.maxExclusive !== undefined) parts.push(`< ${field.maxExclusive}`);
      description = `a finite number${parts.length ? ` ${parts.join(' and ')}` : ''}`;
      break;
    }
    case 'bool':
      description = 'true or false';
      break;
    case 'string':
      description = 'a non-empty string';
      break;
    case 'enum':
      description = `one of ${quoteAll(field.values)}`;
      break;
    case 'list': {
      const items = field.values ? quoteAll(field.values) : field.of === 'int' ? 'integers' : field.of === 'object' ? 'objects' : 'strings';
      description = `a ${field.minItems > 0 ? 'non-empty ' : ''}list of ${items}`;
      break;
    }
    case 'section':
      description = `an object with keys ${Object.keys(field.fields).join(', ')}`;
      break;
  }
  return 'nullable' in field && field.nullable ? `${description} or null` : description;
}

/** What a list item must be, for error messages. */
export function describeListItem(field: Extract<Field, { kind: 'list' }>): string {
  if (field.values) return `one of ${quoteAll(field.values)}`;
  return field.of === 'int' ? 'an integer' : field.of === 'object' ? 'an object' : 'a string';
}
