import { OPERATIONS, type Operation } from './arithmetic-problem';

/** What `generateTaskData` makes; every field has a default (see {@link defaultTaskOptions}). */
export interface TaskOptions {
  /** Seed of every random choice: same options, same bytes. */
  readonly seed: number;
  /** Operations drawn uniformly per problem. */
  readonly operations: readonly Operation[];
  /** Digits of the operands (the single-digit multiplier of `mul` excepted), drawn uniformly in [minDigits, maxDigits]. */
  readonly minDigits: number;
  readonly maxDigits: number;
  /** Sizes of the SFT sweep, ascending; each file is a prefix of the next (the sweep adds data, it does not swap it). */
  readonly sftSizes: readonly number[];
  /**
   * The SFT problems drawn before the preference and RL-prompt pools; null: all of them (the largest
   * size). Problems past it (the sweep's larger sizes) are drawn after every other pool, so adding
   * sizes above it changes no other file: the files of `sftSizes: [..., 300, 1000], sftCoreSize: 300`
   * are byte for byte those of `sftSizes: [300]`, plus the larger SFT files.
   */
  readonly sftCoreSize: number | null;
  /** Documents of the pretraining corpus. */
  readonly corpusSize: number;
  /** Preference pairs for DPO / reward-model training. */
  readonly preferenceSize: number;
  /** Prompts with answers for GRPO / PPO. */
  readonly promptsSize: number;
  /** Held-out problems; every eval file is made from these and no training file contains one. */
  readonly evalSize: number;
}

export function defaultTaskOptions(): TaskOptions {
  return {
    seed: 0,
    operations: [...OPERATIONS],
    minDigits: 2,
    maxDigits: 3,
    sftSizes: [100, 300, 1000, 3000],
    sftCoreSize: null,
    corpusSize: 20000,
    preferenceSize: 2000,
    promptsSize: 2000,
    evalSize: 300,
  };
}

const KEYS = Object.keys(defaultTaskOptions());
const COUNT_LIMIT = 1_000_000;

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

function count(value: unknown, field: string, min: number, max = COUNT_LIMIT): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${field}: got ${show(value)}, expected an integer in [${min}, ${max}]`);
  }
  return value;
}

/**
 * Validates task options from a config file or the command line, filling
 * defaults. Unknown keys, wrong types, unsorted or repeated SFT sizes and
 * impossible digit ranges are refused with the field, the value and what was
 * expected, e.g. `task.sftSizes[1]: got 100, expected a size larger than sftSizes[0] = 300`.
 */
export function parseTaskOptions(raw: unknown, where = 'task'): TaskOptions {
  if (raw === undefined) return defaultTaskOptions();
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where}: got ${show(raw)}, expected an object of task options`);
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!KEYS.includes(key)) throw new Error(`${where}.${key}: unknown option, expected one of ${KEYS.join(', ')}`);
  }
  const d = defaultTaskOptions();
  const pick = <T>(key: keyof TaskOptions, fallback: T): unknown => (obj[key] === undefined ? fallback : obj[key]);

  const seed = count(pick('seed', d.seed), `${where}.seed`, 0, Number.MAX_SAFE_INTEGER);
  const opsRaw = pick('operations', d.operations);
  if (!Array.isArray(opsRaw) || opsRaw.length === 0) throw new Error(`${where}.operations: got ${show(opsRaw)}, expected a non-empty list of ${OPERATIONS.join(', ')}`);
  const operations = opsRaw.map((op: unknown, i) => {
    if (typeof op !== 'string' || !(OPERATIONS as readonly string[]).includes(op)) {
      throw new Error(`${where}.operations[${i}]: got ${show(op)}, expected one of ${OPERATIONS.join(', ')}`);
    }
    if (opsRaw.indexOf(op) !== i) throw new Error(`${where}.operations[${i}]: got ${show(op)} again, expected each operation once`);
    return op as Operation;
  });
  // Two digits at least: one-digit facts (7+5=12) are the corpus's building
  // blocks, not problems, so held-out problems can never hide among them.
  const minDigits = count(pick('minDigits', d.minDigits), `${where}.minDigits`, 2, 6);
  const maxDigits = count(pick('maxDigits', d.maxDigits), `${where}.maxDigits`, 2, 6);
  if (maxDigits < minDigits) throw new Error(`${where}.maxDigits: got ${maxDigits}, expected a value >= minDigits (${minDigits})`);

  const sizesRaw = pick('sftSizes', d.sftSizes);
  if (!Array.isArray(sizesRaw) || sizesRaw.length === 0) throw new Error(`${where}.sftSizes: got ${show(sizesRaw)}, expected a non-empty list of ascending sizes such as [100, 300, 1000]`);
  const sftSizes = sizesRaw.map((s: unknown, i) => {
    const n = count(s, `${where}.sftSizes[${i}]`, 1);
    if (i > 0 && n <= (sizesRaw[i - 1] as number)) {
      throw new Error(`${where}.sftSizes[${i}]: got ${n}, expected a size larger than sftSizes[${i - 1}] = ${sizesRaw[i - 1] as number} (ascending, no repeats)`);
    }
    return n;
  });
  const coreRaw = pick('sftCoreSize', d.sftCoreSize);
  const sftCoreSize = coreRaw === null ? null : count(coreRaw, `${where}.sftCoreSize`, 1);
  if (sftCoreSize !== null && !sftSizes.includes(sftCoreSize)) {
    throw new Error(`${where}.sftCoreSize: got ${sftCoreSize}, expected null or one of sftSizes (${sftSizes.join(', ')})`);
  }
  return {
    seed,
    operations,
    minDigits,
    maxDigits,
    sftSizes,
    sftCoreSize,
    corpusSize: count(pick('corpusSize', d.corpusSize), `${where}.corpusSize`, 1),
    preferenceSize: count(pick('preferenceSize', d.preferenceSize), `${where}.preferenceSize`, 1),
    promptsSize: count(pick('promptsSize', d.promptsSize), `${where}.promptsSize`, 1),
    evalSize: count(pick('evalSize', d.evalSize), `${where}.evalSize`, 1),
  };
}
