/**
 * The run config of an offline training stage (lm, sft, rm, dpo), read from
 * YAML or JSON. Keys are snake_case and follow TRL's TrainingArguments /
 * SFTConfig / RewardConfig / DPOConfig where one exists (learning_rate,
 * gradient_accumulation_steps, max_grad_norm, warmup_ratio, logging_steps,
 * beta, loss_type, ...), so the resolved config.json reads like the file the
 * user wrote.
 *
 * Like nanoGPT's configurator, it is loud: an unknown key, a wrong type, a
 * value out of range or a section for another stage is an error naming the key
 * path, the value and what was expected. The schema below drives both parsing
 * and `--set key=value` overrides, so an override is typed like the file.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';

export const STAGES = ['lm', 'sft', 'rm', 'dpo'] as const;
export type Stage = (typeof STAGES)[number];
export const LR_SCHEDULERS = ['constant', 'linear', 'cosine'] as const;
export type LrSchedulerType = (typeof LR_SCHEDULERS)[number];
const DATA_FORMATS = ['language-modeling', 'prompt-completion', 'preference', 'implicit-preference', 'prompt-only'] as const;
const DPO_LOSS_TYPES = ['sigmoid', 'robust', 'hinge', 'ipo'] as const;
const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

export interface DatasetConfig {
  /** JSONL file of training records. */
  train: string;
  /** JSONL file of held-out records; null uses eval_fraction of train (or no evaluation). */
  eval: string | null;
  /** Share of train held out for evaluation when `eval` is null (a fixed, seeded choice of records). */
  eval_fraction: number;
  format: (typeof DATA_FORMATS)[number] | null;
  style: 'standard' | 'conversational' | null;
  /** JSON field names, when they differ from TRL's (text, messages, prompt, completion, chosen, rejected). */
  fields: { text: string | null; messages: string | null; prompt: string | null; completion: string | null; chosen: string | null; rejected: string | null };
  error_policy: 'fail' | 'skip';
  truncation: 'truncate' | 'drop';
  shuffle: boolean;
  drop_last: boolean;
}

export interface TrainConfig {
  /** Optimizer steps; null derives them from `epochs`. */
  max_steps: number | null;
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
}

export interface DpoReferenceConfig {
  /** Reference model directory; null uses a frozen copy of the policy as loaded (TRL's default). */
  model: string | null;
  batch_size: number;
}

export interface DpoStageConfig {
  max_length: number;
  beta: number;
  loss_type: (typeof DPO_LOSS_TYPES)[number];
  label_smoothing: number;
  reference: DpoReferenceConfig;
}

export interface RunConfig {
  stage: Stage;
  /** Model directory (HF layout) to start from. */
  model: string;
  /** Runs are written to <output_dir>/<run_id>/. */
  output_dir: string;
  /** null names the run <stage>-<UTC timestamp>. */
  run_id: string | null;
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
}

/** A config error: the message names the key path, the value and what was expected. */
export class RunConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunConfigError';
  }
}

// ---------------------------------------------------------------------------
// Schema

type Field =
  | { kind: 'int'; min: number; max?: number; nullable?: boolean; default?: number | null; required?: boolean }
  | { kind: 'number'; min?: number; max?: number; minExclusive?: number; maxExclusive?: number; nullable?: boolean; default?: number | null }
  | { kind: 'bool'; default: boolean }
  | { kind: 'string'; nullable?: boolean; default?: string | null; required?: boolean }
  | { kind: 'enum'; values: readonly string[]; nullable?: boolean; default?: string | null; required?: boolean }
  | { kind: 'strings'; values?: readonly string[]; default: string[] }
  | { kind: 'section'; fields: Record<string, Field>; nullable?: boolean; stage?: Stage };

const maxLength = (d: number): Field => ({ kind: 'int', min: 2, default: d });

/** The schema of a run config. Stage sections (`stage` set) are only allowed for their stage. */
export const RUN_CONFIG_SCHEMA: Record<string, Field> = {
  stage: { kind: 'enum', values: STAGES, required: true },
  model: { kind: 'string', required: true },
  output_dir: { kind: 'string', default: 'runs' },
  run_id: { kind: 'string', nullable: true, default: null },
  seed: { kind: 'int', min: 0, max: 0xffffffff, default: 42 },
  backend: { kind: 'string', nullable: true, default: null },
  resume: { kind: 'bool', default: false },
  dataset: {
    kind: 'section',
    fields: {
      train: { kind: 'string', required: true },
      eval: { kind: 'string', nullable: true, default: null },
      eval_fraction: { kind: 'number', min: 0, maxExclusive: 1, default: 0 },
      format: { kind: 'enum', values: DATA_FORMATS, nullable: true, default: null },
      style: { kind: 'enum', values: ['standard', 'conversational'], nullable: true, default: null },
      fields: {
        kind: 'section',
        fields: Object.fromEntries(['text', 'messages', 'prompt', 'completion', 'chosen', 'rejected'].map((k) => [k, { kind: 'string', nullable: true, default: null } as Field])),
      },
      error_policy: { kind: 'enum', values: ['fail', 'skip'], default: 'fail' },
      truncation: { kind: 'enum', values: ['truncate', 'drop'], default: 'truncate' },
      shuffle: { kind: 'bool', default: true },
      drop_last: { kind: 'bool', default: false },
    },
  },
  train: {
    kind: 'section',
    fields: {
      max_steps: { kind: 'int', min: 1, nullable: true, default: null },
      epochs: { kind: 'int', min: 1, default: 1 },
      batch_size: { kind: 'int', min: 1, default: 8 },
      eval_batch_size: { kind: 'int', min: 1, nullable: true, default: null },
      gradient_accumulation_steps: { kind: 'int', min: 1, default: 1 },
      learning_rate: { kind: 'number', minExclusive: 0, default: 5e-5 },
      lr_scheduler: { kind: 'enum', values: LR_SCHEDULERS, default: 'linear' },
      warmup_steps: { kind: 'int', min: 0, default: 0 },
      warmup_ratio: { kind: 'number', min: 0, maxExclusive: 1, default: 0 },
      max_grad_norm: { kind: 'number', minExclusive: 0, nullable: true, default: 1 },
      weight_decay: { kind: 'number', min: 0, default: 0 },
      adam_beta1: { kind: 'number', min: 0, maxExclusive: 1, default: 0.9 },
      adam_beta2: { kind: 'number', min: 0, maxExclusive: 1, default: 0.999 },
      adam_epsilon: { kind: 'number', minExclusive: 0, default: 1e-8 },
      max_consecutive_skips: { kind: 'int', min: 0, default: 5 },
      logging_steps: { kind: 'int', min: 1, default: 10 },
      eval_steps: { kind: 'int', min: 1, nullable: true, default: null },
      save_steps: { kind: 'int', min: 1, nullable: true, default: null },
      save_total_limit: { kind: 'int', min: 1, nullable: true, default: null },
    },
  },
  lora: {
    kind: 'section',
    nullable: true,
    fields: {
      r: { kind: 'int', min: 1, default: 8 },
      alpha: { kind: 'number', minExclusive: 0, default: 16 },
      dropout: { kind: 'number', min: 0, maxExclusive: 1, default: 0 },
      target_modules: { kind: 'strings', values: LORA_TARGETS, default: ['q_proj', 'v_proj'] },
    },
  },
  lm: { kind: 'section', stage: 'lm', fields: { max_length: maxLength(512), packing: { kind: 'bool', default: true } } },
  sft: {
    kind: 'section',
    stage: 'sft',
    fields: {
      max_length: maxLength(1024),
      packing: { kind: 'bool', default: false },
      assistant_only_loss: { kind: 'bool', default: true },
      completion_only_loss: { kind: 'bool', default: true },
    },
  },
  rm: {
    kind: 'section',
    stage: 'rm',
    fields: {
      max_length: maxLength(1024),
      margin: { kind: 'number', default: 0 },
      center_rewards_coefficient: { kind: 'number', min: 0, nullable: true, default: null },
    },
  },
  dpo: {
    kind: 'section',
    stage: 'dpo',
    fields: {
      max_length: maxLength(1024),
      beta: { kind: 'number', minExclusive: 0, default: 0.1 },
      loss_type: { kind: 'enum', values: DPO_LOSS_TYPES, default: 'sigmoid' },
      label_smoothing: { kind: 'number', min: 0, max: 0.5, default: 0 },
      reference: {
        kind: 'section',
        fields: { model: { kind: 'string', nullable: true, default: null }, batch_size: { kind: 'int', min: 1, default: 8 } },
      },
    },
  },
};

// ---------------------------------------------------------------------------
// Parsing

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `list ${JSON.stringify(value)}`;
  if (value === null) return 'null';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(path: string, expected: string, value: unknown): never {
  throw new RunConfigError(`${path}: expected ${expected}, got ${show(value)}`);
}

function describeField(f: Field): string {
  let d: string;
  switch (f.kind) {
    case 'int':
      d = `an integer >= ${f.min}${f.max !== undefined ? ` and <= ${f.max}` : ''}`;
      break;
    case 'number': {
      const parts: string[] = [];
      if (f.min !== undefined) parts.push(`>= ${f.min}`);
      if (f.minExclusive !== undefined) parts.push(`> ${f.minExclusive}`);
      if (f.max !== undefined) parts.push(`<= ${f.max}`);
      if (f.maxExclusive !== undefined) parts.push(`< ${f.maxExclusive}`);
      d = `a finite number${parts.length ? ` ${parts.join(' and ')}` : ''}`;
      break;
    }
    case 'bool':
      d = 'true or false';
      break;
    case 'string':
      d = 'a non-empty string';
      break;
    case 'enum':
      d = `one of ${f.values.map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    case 'strings':
      d = f.values ? `a non-empty list of ${f.values.map((v) => JSON.stringify(v)).join(', ')}` : 'a non-empty list of strings';
      break;
    case 'section':
      d = `an object with keys ${Object.keys(f.fields).join(', ')}`;
      break;
  }
  return 'nullable' in f && f.nullable ? `${d} or null` : d;
}

function parseField(f: Field, value: unknown, path: string, stage: Stage | undefined): unknown {
  if (f.kind === 'section') return parseSection(f, value, path, stage);
  if (value === undefined) {
    if ('required' in f && f.required) throw new RunConfigError(`${path}: required key is missing; expected ${describeField(f)}`);
    return 'default' in f ? (Array.isArray(f.default) ? [...f.default] : f.default) : null;
  }
  if (value === null) {
    if ('nullable' in f && f.nullable) return null;
    fail(path, describeField(f), value);
  }
  switch (f.kind) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < f.min || (f.max !== undefined && value > f.max)) fail(path, describeField(f), value);
      return value;
    case 'number':
      if (
        typeof value !== 'number' ||
        !Number.isFinite(value) ||
        (f.min !== undefined && value < f.min) ||
        (f.minExclusive !== undefined && value <= f.minExclusive) ||
        (f.max !== undefined && value > f.max) ||
        (f.maxExclusive !== undefined && value >= f.maxExclusive)
      ) {
        fail(path, describeField(f), value);
      }
      return value;
    case 'bool':
      if (typeof value !== 'boolean') fail(path, describeField(f), value);
      return value;
    case 'string':
      if (typeof value !== 'string' || value.length === 0) fail(path, describeField(f), value);
      return value;
    case 'enum':
      if (typeof value !== 'string' || !f.values.includes(value)) fail(path, describeField(f), value);
      return value;
    case 'strings': {
      if (!Array.isArray(value) || value.length === 0) fail(path, describeField(f), value);
      value.forEach((v, i) => {
        if (typeof v !== 'string' || (f.values && !f.values.includes(v))) fail(`${path}[${i}]`, f.values ? `one of ${f.values.map((x) => JSON.stringify(x)).join(', ')}` : 'a string', v);
      });
      return [...new Set(value as string[])];
    }
  }
}

function parseSection(f: Extract<Field, { kind: 'section' }>, value: unknown, path: string, stage: Stage | undefined): Record<string, unknown> | null {
  if (f.stage !== undefined && f.stage !== stage) {
    if (value !== undefined && value !== null) throw new RunConfigError(`${path}: this section applies to stage "${f.stage}" only, but stage is ${JSON.stringify(stage)}`);
    return null;
  }
  if (value === null && f.nullable) return null;
  if (value === undefined) {
    if (f.nullable && f.stage === undefined) return null;
    value = {};
  }
  if (!isPlainObject(value)) fail(path, describeField(f), value);
  for (const key of Object.keys(value)) {
    if (!(key in f.fields)) throw new RunConfigError(`${path === '' ? '' : `${path}.`}${key}: unknown key (known keys${path === '' ? '' : ` of ${path}`}: ${Object.keys(f.fields).join(', ')})`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, sub] of Object.entries(f.fields)) out[key] = parseField(sub, value[key], path === '' ? key : `${path}.${key}`, stage);
  return out;
}

/**
 * Validates a raw config object (parsed YAML/JSON) and fills in defaults.
 * `source` (a file name) prefixes every error.
 */
export function parseRunConfig(raw: unknown, source = 'config'): RunConfig {
  try {
    if (!isPlainObject(raw)) fail('(top level)', 'an object of config keys', raw);
    const stage = parseField(RUN_CONFIG_SCHEMA.stage, raw.stage, 'stage', undefined) as Stage;
    const config = parseSection({ kind: 'section', fields: RUN_CONFIG_SCHEMA }, raw, '', stage) as unknown as RunConfig;
    checkCrossFieldRules(config);
    return config;
  } catch (e) {
    if (e instanceof RunConfigError) throw new RunConfigError(`${source}: ${e.message}`);
    throw e;
  }
}

function checkCrossFieldRules(c: RunConfig): void {
  if (c.run_id !== null && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(c.run_id)) fail('run_id', 'letters, digits, ".", "_" or "-" (a directory name)', c.run_id);
  if (c.resume && c.run_id === null) throw new RunConfigError('resume: true needs run_id (the run to continue), got run_id null');
  if (c.dataset.eval !== null && c.dataset.eval_fraction > 0) {
    throw new RunConfigError(`dataset.eval_fraction: ${c.dataset.eval_fraction} cannot be combined with dataset.eval ${JSON.stringify(c.dataset.eval)}; set one of them`);
  }
  if (c.train.warmup_steps > 0 && c.train.warmup_ratio > 0) {
    throw new RunConfigError(`train.warmup_ratio: ${c.train.warmup_ratio} cannot be combined with train.warmup_steps ${c.train.warmup_steps}; set one of them`);
  }
  if (c.dpo && c.dpo.label_smoothing > 0 && c.dpo.loss_type !== 'sigmoid' && c.dpo.loss_type !== 'robust') {
    throw new RunConfigError(`dpo.label_smoothing: ${c.dpo.label_smoothing} applies only to loss_type "sigmoid" or "robust", got loss_type ${JSON.stringify(c.dpo.loss_type)}`);
  }
  if (c.dpo && c.dpo.loss_type === 'robust' && c.dpo.label_smoothing >= 0.5) {
    throw new RunConfigError(`dpo.label_smoothing: expected < 0.5 for loss_type "robust", got ${c.dpo.label_smoothing}`);
  }
}

// ---------------------------------------------------------------------------
// Overrides

function fieldAt(path: string[]): Field | null {
  let fields: Record<string, Field> = RUN_CONFIG_SCHEMA;
  let f: Field | null = null;
  for (let i = 0; i < path.length; i++) {
    f = fields[path[i]] ?? null;
    if (f === null) return null;
    if (i < path.length - 1) {
      if (f.kind !== 'section') return null;
      fields = f.fields;
    }
  }
  return f;
}

function parseOverrideValue(f: Field, text: string, key: string): unknown {
  if (text === 'null' && (('nullable' in f && f.nullable) || f.kind === 'section')) return null;
  switch (f.kind) {
    case 'int':
    case 'number': {
      const n = text.trim() === '' ? Number.NaN : Number(text);
      if (!Number.isFinite(n)) throw new RunConfigError(`--set ${key}=${text}: expected ${describeField(f)}, got ${JSON.stringify(text)}`);
      return n;
    }
    case 'bool':
      if (text === 'true') return true;
      if (text === 'false') return false;
      throw new RunConfigError(`--set ${key}=${text}: expected true or false, got ${JSON.stringify(text)}`);
    case 'string':
    case 'enum':
      return text;
    case 'strings':
      if (text.startsWith('[')) {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          throw new RunConfigError(`--set ${key}=${text}: expected a JSON list or comma-separated values`);
        }
      }
      return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
    case 'section':
      throw new RunConfigError(`--set ${key}=${text}: ${key} is a section; set one of its keys (${Object.keys(f.fields).map((k) => `${key}.${k}`).join(', ')}) or null`);
  }
}

/**
 * Applies `key=value` overrides (dotted key paths, e.g. `train.learning_rate=3e-4`,
 * `lora.target_modules=q_proj,v_proj`, `lora=null`) to a raw config object, typing
 * each value by the schema. Returns a new object; validate it with parseRunConfig.
 */
export function applyConfigOverrides(raw: unknown, overrides: readonly string[]): Record<string, unknown> {
  const out = structuredClone(isPlainObject(raw) ? raw : {}) as Record<string, unknown>;
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new RunConfigError(`--set ${o}: expected key=value (e.g. train.learning_rate=1e-4)`);
    const key = o.slice(0, eq).trim();
    const text = o.slice(eq + 1);
    const path = key.split('.');
    const f = fieldAt(path);
    if (f === null) throw new RunConfigError(`--set ${o}: unknown key ${JSON.stringify(key)}`);
    const value = parseOverrideValue(f, text, key);
    let obj = out;
    for (const part of path.slice(0, -1)) {
      const next = obj[part];
      if (!isPlainObject(next)) obj[part] = {};
      obj = obj[part] as Record<string, unknown>;
    }
    obj[path[path.length - 1]] = value;
  }
  return out;
}

/** Reads a YAML (or JSON, a subset of YAML) config file, applies overrides and validates it. */
export async function loadRunConfig(path: string, overrides: readonly string[] = []): Promise<RunConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new RunConfigError(`${path}: cannot read the config file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new RunConfigError(`${path}: invalid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  return parseRunConfig(applyConfigOverrides(raw, overrides), path);
}
