/** The dataset formats of TRL, each in a standard (strings) or conversational (message lists) style. */
export const DATA_FORMATS = [
  'language-modeling',
  'prompt-completion',
  'preference',
  'implicit-preference',
  'prompt-only',
] as const;
export type DataFormat = (typeof DATA_FORMATS)[number];

export const DATA_STYLES = ['standard', 'conversational'] as const;
export type DataStyle = (typeof DATA_STYLES)[number];

/** Names of the JSON fields that hold each part of a record (defaults are TRL's). */
export interface DataFieldNames {
  text: string;
  messages: string;
  prompt: string;
  completion: string;
  chosen: string;
  rejected: string;
}

export type ErrorPolicy = 'fail' | 'skip';
export type TruncationPolicy = 'truncate' | 'drop';

/** Configuration of the data layer; build it with {@link parseDataConfig}. */
export interface DataConfig {
  /** Format override; null detects it from the first valid line. */
  format: DataFormat | null;
  /** Style override; null detects it from the first valid line. */
  style: DataStyle | null;
  fields: DataFieldNames;
  /** Ground-truth column for prompt-only data; null looks for 'answer', then 'solution' (optional on each line). A named column is required on every line. */
  groundTruthField: string | null;
  /** 'fail' throws on the first bad line; 'skip' skips it and counts it with its problem. */
  errorPolicy: ErrorPolicy;
  /** Maximum tokens per sequence (per packed row when packing); null for no limit. */
  maxLength: number | null;
  /** What to do with an example longer than maxLength. */
  truncation: TruncationPolicy;
  /** Seed of the shuffle (an unsigned 32-bit integer). */
  seed: number;
  shuffle: boolean;
  batchSize: number;
  /** Drop the last incomplete batch of each epoch. */
  dropLast: boolean;
  /** Pack several SFT examples into each row of maxLength tokens. */
  packing: boolean;
  /** SFT on conversations: train on assistant tokens only. */
  assistantOnlyLoss: boolean;
  /** SFT on prompt-completion data: train on completion tokens only. */
  completionOnlyLoss: boolean;
}

export const DEFAULT_FIELD_NAMES: Readonly<DataFieldNames> = Object.freeze({
  text: 'text',
  messages: 'messages',
  prompt: 'prompt',
  completion: 'completion',
  chosen: 'chosen',
  rejected: 'rejected',
});

/** Defaults of every key of {@link DataConfig}. */
export function defaultDataConfig(): DataConfig {
  return {
    format: null,
    style: null,
    fields: { ...DEFAULT_FIELD_NAMES },
    groundTruthField: null,
    errorPolicy: 'fail',
    maxLength: null,
    truncation: 'truncate',
    seed: 0,
    shuffle: true,
    batchSize: 8,
    dropLast: false,
    packing: false,
    assistantOnlyLoss: true,
    completionOnlyLoss: true,
  };
}

/** Error for a bad configuration value; the message names the key, the value and what was expected. */
export class DataConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataConfigError';
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  const json = JSON.stringify(value);
  return `${Array.isArray(value) ? 'list' : value === null ? 'null' : typeof value} ${json === undefined ? String(value) : json}`;
}

function fail(key: string, expected: string, value: unknown): never {
  throw new DataConfigError(`${key}: expected ${expected}, got ${show(value)}`);
}

function rejectUnknownKeys(obj: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) {
      throw new DataConfigError(`${where}.${key}: unknown key (known keys: ${known.join(', ')})`);
    }
  }
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], key: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(key, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, value);
  }
  return value as T;
}

function boolean(value: unknown, key: string): boolean {
  if (typeof value !== 'boolean') fail(key, 'true or false', value);
  return value;
}

function integer(value: unknown, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(key, `an integer in [${min}, ${max}]`, value);
  }
  return value;
}

function fieldName(value: unknown, key: string): string {
  if (typeof value !== 'string' || value.length === 0) fail(key, 'a non-empty string (a JSON field name)', value);
  return value;
}

/**
 * Validates a data configuration (as read from YAML or JSON) and fills in the
 * defaults. Unknown keys and wrong types are rejected with an error naming the
 * key (prefixed by `where`), the value and what was expected.
 */
export function parseDataConfig(raw: unknown, where = 'data'): DataConfig {
  const config = defaultDataConfig();
  if (raw === undefined || raw === null) return config;
  if (!isPlainObject(raw)) fail(where, 'an object', raw);
  const known = Object.keys(config);
  rejectUnknownKeys(raw, known, where);

  const key = (k: string): string => `${where}.${k}`;
  if (raw.format !== undefined && raw.format !== null && raw.format !== 'auto') {
    config.format = oneOf(raw.format, DATA_FORMATS, key('format'));
  }
  if (raw.style !== undefined && raw.style !== null && raw.style !== 'auto') {
    config.style = oneOf(raw.style, DATA_STYLES, key('style'));
  }
  if (raw.fields !== undefined) {
    const fields = raw.fields;
    if (!isPlainObject(fields)) fail(key('fields'), 'an object mapping parts to JSON field names', fields);
    rejectUnknownKeys(fields, Object.keys(DEFAULT_FIELD_NAMES), key('fields'));
    for (const [part, name] of Object.entries(fields)) {
      config.fields[part as keyof DataFieldNames] = fieldName(name, `${key('fields')}.${part}`);
    }
  }
  if (raw.groundTruthField !== undefined && raw.groundTruthField !== null) {
    config.groundTruthField = fieldName(raw.groundTruthField, key('groundTruthField'));
  }
  if (raw.errorPolicy !== undefined) config.errorPolicy = oneOf(raw.errorPolicy, ['fail', 'skip'] as const, key('errorPolicy'));
  if (raw.maxLength !== undefined && raw.maxLength !== null) config.maxLength = integer(raw.maxLength, key('maxLength'), 2);
  if (raw.truncation !== undefined) config.truncation = oneOf(raw.truncation, ['truncate', 'drop'] as const, key('truncation'));
  if (raw.seed !== undefined) config.seed = integer(raw.seed, key('seed'), 0, 0xffffffff);
  if (raw.shuffle !== undefined) config.shuffle = boolean(raw.shuffle, key('shuffle'));
  if (raw.batchSize !== undefined) config.batchSize = integer(raw.batchSize, key('batchSize'), 1);
  if (raw.dropLast !== undefined) config.dropLast = boolean(raw.dropLast, key('dropLast'));
  if (raw.packing !== undefined) config.packing = boolean(raw.packing, key('packing'));
  if (raw.assistantOnlyLoss !== undefined) config.assistantOnlyLoss = boolean(raw.assistantOnlyLoss, key('assistantOnlyLoss'));
  if (raw.completionOnlyLoss !== undefined) config.completionOnlyLoss = boolean(raw.completionOnlyLoss, key('completionOnlyLoss'));

  if (config.packing && config.maxLength === null) {
    throw new DataConfigError(`${key('packing')}: packing needs ${key('maxLength')} (the length of a packed row), got maxLength unset`);
  }
  const names = Object.entries(config.fields);
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      if (names[i][1] === names[j][1]) {
        throw new DataConfigError(
          `${key('fields')}: ${names[i][0]} and ${names[j][0]} both use the JSON field ${JSON.stringify(names[i][1])}; expected distinct names`,
        );
      }
    }
  }
  return config;
}
