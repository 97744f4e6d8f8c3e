/**
 * The run config of every training stage (lm, sft, rm, dpo, ppo, grpo), read
 * from YAML or JSON. Keys are snake_case and follow TRL's TrainingArguments /
 * SFTConfig / RewardConfig / DPOConfig / PPOConfig / GRPOConfig where one
 * exists (learning_rate, gradient_accumulation_steps, max_grad_norm, beta,
 * loss_type, num_generations, epsilon, kl_coef, cliprange, ...), so the
 * resolved config.json reads like the file the user wrote. The Trainer
 * service converts its RunSpec to this config and validates it here too.
 *
 * Like nanoGPT's configurator, it is loud: an unknown key, a wrong type, a
 * value out of range or a key for another stage is an error naming the key
 * path, the value and what was expected.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { applyConfigOverrides, isPlainObject } from './config-overrides';
import { describeField, describeListItem, RUN_CONFIG_SCHEMA, type Field, type SectionField } from './run-config-schema';
import { OFFLINE_STAGES, RL_STAGES, RUN_ID_PATTERN, RUN_ID_RULE, RunConfigError, type RunConfig, type Stage } from './run-config-types';

export { RunConfigError };
export type { RunConfig };

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `list ${JSON.stringify(value)}`;
  if (value === null) return 'null';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function fail(path: string, expected: string, value: unknown): never {
  throw new RunConfigError(`${path}: expected ${expected}, got ${show(value)}`);
}

const isRlStage = (stage: Stage) => (RL_STAGES as readonly Stage[]).includes(stage);
const listStages = (stages: readonly Stage[]) => `${stages.length === 1 ? 'stage' : 'stages'} ${stages.map((s) => JSON.stringify(s)).join(', ')}`;

function defaultOf(field: Field, path: string, stage: Stage): unknown {
  const rlDefault = isRlStage(stage) ? field.rl : undefined;
  const required = rlDefault ? 'required' in rlDefault : 'required' in field && field.required;
  if (required) throw new RunConfigError(`${path}: required key is missing${rlDefault ? ` for stage "${stage}"` : ''}; expected ${describeField(field)}`);
  if (rlDefault && 'default' in rlDefault) return rlDefault.default;
  if (!('default' in field)) return null;
  return Array.isArray(field.default) ? [...field.default] : field.default;
}

function parseList(field: Extract<Field, { kind: 'list' }>, value: unknown, path: string): unknown[] {
  if (!Array.isArray(value) || value.length < field.minItems) fail(path, describeField(field), value);
  value.forEach((item, i) => {
    const ok = field.of === 'int' ? Number.isSafeInteger(item) : field.of === 'object' ? isPlainObject(item) : typeof item === 'string' && (!field.values || field.values.includes(item));
    if (!ok) fail(`${path}[${i}]`, describeListItem(field), item);
  });
  return field.unique ? [...new Set(value)] : [...value];
}

function parseField(field: Field, value: unknown, path: string, stage: Stage): unknown {
  if (field.stages && !field.stages.includes(stage)) {
    if (value !== undefined && value !== null) {
      throw new RunConfigError(`${path}: this ${field.kind === 'section' ? 'section' : 'key'} applies to ${listStages(field.stages)} only, but stage is ${JSON.stringify(stage)}${field.stagesNote ? ` (${field.stagesNote})` : ''}`);
    }
    return field.kind === 'section' ? null : defaultOf(field, path, stage);
  }
  if (field.kind === 'section') return parseSection(field, value, path, stage);
  if (value === undefined) return defaultOf(field, path, stage);
  if (value === null) {
    if ('nullable' in field && field.nullable) return null;
    fail(path, describeField(field), value);
  }
  switch (field.kind) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < field.min || (field.max !== undefined && value > field.max)) fail(path, describeField(field), value);
      return value;
    case 'number':
      if (
        typeof value !== 'number' ||
        !Number.isFinite(value) ||
        (field.min !== undefined && value < field.min) ||
        (field.minExclusive !== undefined && value <= field.minExclusive) ||
        (field.max !== undefined && value > field.max) ||
        (field.maxExclusive !== undefined && value >= field.maxExclusive)
      ) {
        fail(path, describeField(field), value);
      }
      return value;
    case 'bool':
      if (typeof value !== 'boolean') fail(path, describeField(field), value);
      return value;
    case 'string':
      if (typeof value !== 'string' || value.length === 0) fail(path, describeField(field), value);
      return value;
    case 'enum':
      if (typeof value !== 'string' || !field.values.includes(value)) fail(path, describeField(field), value);
      return value;
    case 'list':
      return parseList(field, value, path);
  }
}

function parseSection(section: SectionField, value: unknown, path: string, stage: Stage): Record<string, unknown> | null {
  if (value === null && section.nullable) return null;
  if (value === undefined) {
    if (section.nullable) return null;
    value = {};
  }
  if (!isPlainObject(value)) fail(path, describeField(section), value);
  for (const key of Object.keys(value)) {
    if (!(key in section.fields)) throw new RunConfigError(`${path === '' ? '' : `${path}.`}${key}: unknown key (known keys${path === '' ? '' : ` of ${path}`}: ${Object.keys(section.fields).join(', ')})`);
  }
  const parsed: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(section.fields)) parsed[key] = parseField(field, value[key], path === '' ? key : `${path}.${key}`, stage);
  return parsed;
}

/**
 * Validates a raw config object (parsed YAML/JSON) and fills in defaults.
 * `source` (a file name) prefixes every error.
 */
export function parseRunConfig(raw: unknown, source = 'config'): RunConfig {
  try {
    if (!isPlainObject(raw)) fail('(top level)', 'an object of config keys', raw);
    const stage = parseField(RUN_CONFIG_SCHEMA.stage, raw.stage, 'stage', 'lm') as Stage;
    const config = parseSection({ kind: 'section', fields: RUN_CONFIG_SCHEMA }, raw, '', stage) as unknown as RunConfig;
    checkCrossFieldRules(config);
    return config;
  } catch (err) {
    if (err instanceof RunConfigError) throw new RunConfigError(`${source}: ${err.message}`);
    throw err;
  }
}

function checkCrossFieldRules(config: RunConfig): void {
  const { dataset, train, dpo } = config;
  if (config.run_id !== null && !RUN_ID_PATTERN.test(config.run_id)) fail('run_id', `${RUN_ID_RULE} (a directory name)`, config.run_id);
  if (config.resume && config.run_id === null) throw new RunConfigError('resume: true needs run_id (the run to continue), got run_id null');
  if (dataset.eval !== null && dataset.eval_fraction > 0) {
    throw new RunConfigError(`dataset.eval_fraction: ${dataset.eval_fraction} cannot be combined with dataset.eval ${JSON.stringify(dataset.eval)}; set one of them`);
  }
  if (train.warmup_steps > 0 && train.warmup_ratio > 0) {
    throw new RunConfigError(`train.warmup_ratio: ${train.warmup_ratio} cannot be combined with train.warmup_steps ${train.warmup_steps}; set one of them`);
  }
  if ((OFFLINE_STAGES as readonly Stage[]).includes(config.stage) && !Number.isInteger(train.epochs)) fail('train.epochs', `a whole number of epochs for stage "${config.stage}"`, train.epochs);
  if (dpo && dpo.label_smoothing > 0 && dpo.loss_type !== 'sigmoid' && dpo.loss_type !== 'robust') {
    throw new RunConfigError(`dpo.label_smoothing: ${dpo.label_smoothing} applies only to loss_type "sigmoid" or "robust", got loss_type ${JSON.stringify(dpo.loss_type)}`);
  }
  if (dpo && dpo.loss_type === 'robust' && dpo.label_smoothing >= 0.5) {
    throw new RunConfigError(`dpo.label_smoothing: expected < 0.5 for loss_type "robust", got ${dpo.label_smoothing}`);
  }
  if (config.rm?.normalize_reward && dataset.eval === null && dataset.eval_fraction === 0) {
    throw new RunConfigError('rm.normalize_reward: true needs an eval split (dataset.eval or dataset.eval_fraction > 0): the scores are standardised by their mean and standard deviation on it');
  }
  checkRlRules(config);
}

function checkRlRules(config: RunConfig): void {
  const rl = config.ppo ?? config.grpo;
  if (!rl) return;
  const section = config.stage;
  if (config.dataset.format !== null && config.dataset.format !== 'prompt-only') fail('dataset.format', `"prompt-only" or null for stage "${section}"`, config.dataset.format);
  const completions = rl.prompts_per_step * rl.num_generations;
  if (rl.mini_batch_size !== null && completions % rl.mini_batch_size !== 0) {
    fail(`${section}.mini_batch_size`, `an integer >= 1 dividing prompts_per_step * num_generations = ${completions}, or null`, rl.mini_batch_size);
  }
  if (rl.kl_target !== null) {
    if (rl.kl_horizon <= 0) fail(`${section}.kl_horizon`, 'an integer > 0 when kl_target is set', rl.kl_horizon);
    const [coefficientKey, coefficient] = config.ppo ? ['kl_coef', config.ppo.kl_coef] : ['beta', config.grpo!.beta];
    if (coefficient <= 0) fail(`${section}.${coefficientKey}`, 'a number > 0 when kl_target is set (the controller scales it multiplicatively)', coefficient);
  }
  if (config.grpo?.loss_type === 'dr_grpo' && rl.max_completion_length === null) fail('grpo.max_completion_length', 'an integer >= 1 with loss_type "dr_grpo" (its loss divides by it)', null);
}

/** Reads a YAML (or JSON, a subset of YAML) config file, applies `--set` overrides and validates it. */
export async function loadRunConfig(path: string, overrides: readonly string[] = []): Promise<RunConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new RunConfigError(`${path}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new RunConfigError(`${path}: invalid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  return parseRunConfig(applyConfigOverrides(raw, overrides), path);
}
