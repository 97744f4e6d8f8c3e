/**
 * Configuration from flags and environment variables, validated with errors
 * that name the flag, the variable, the value and what was expected.
 * Precedence: flag > environment variable > default.
 */

type Kind = 'string' | 'int' | 'number' | 'bool' | 'list';
type ValueOf<K extends Kind> = K extends 'string' ? string : K extends 'int' | 'number' ? number : K extends 'bool' ? boolean : string[];

export interface OptionSpec<K extends Kind = Kind> {
  kind: K;
  /** Flag name without dashes, e.g. `port` for `--port`. */
  flag: string;
  /** Environment variable, e.g. `POSTTRAIN_PORT`. */
  env?: string;
  description: string;
  default?: ValueOf<K>;
  /** Inclusive bounds for numbers. */
  min?: number;
  max?: number;
  /** Allowed values for strings. */
  choices?: readonly string[];
  required?: boolean;
}

export type ConfigSchema = Record<string, OptionSpec>;

type Resolved<S extends ConfigSchema> = {
  [K in keyof S]: S[K] extends OptionSpec<infer V>
    ? S[K]['required'] extends true
      ? ValueOf<V>
      : S[K] extends { default: unknown }
        ? ValueOf<V>
        : ValueOf<V> | undefined
    : never;
};

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Identity helper that keeps literal kinds, so `parseConfig` infers value types. */
export function defineConfig<S extends ConfigSchema>(schema: S): S {
  return schema;
}

function convert(spec: OptionSpec, raw: string, source: string): ValueOf<Kind> {
  const bad = (expected: string): never => {
    throw new ConfigError(`${source}: got "${raw}", expected ${expected}`);
  };
  switch (spec.kind) {
    case 'string': {
      if (spec.choices && !spec.choices.includes(raw)) bad(`one of ${spec.choices.join(', ')}`);
      if (spec.required && raw.trim() === '') bad('a non-empty value');
      return raw;
    }
    case 'int':
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || (spec.kind === 'int' && !Number.isInteger(n))) bad(spec.kind === 'int' ? 'an integer' : 'a number');
      if (spec.min !== undefined && n < spec.min) bad(`a value >= ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) bad(`a value <= ${spec.max}`);
      return n;
    }
    case 'bool': {
      const v = raw.toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      return bad('true or false');
    }
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
  }
}

export interface ParseConfigInput {
  argv?: readonly string[];
  env?: Record<string, string | undefined>;
}

/**
 * Parses `--flag value`, `--flag=value` and bare `--bool-flag` / `--no-bool-flag`.
 * Unknown flags and positional arguments are errors (a typo must not be ignored).
 */
export function parseConfig<S extends ConfigSchema>(schema: S, input: ParseConfigInput = {}): Resolved<S> {
  const argv = input.argv ?? [];
  const env = input.env ?? {};
  const byFlag = new Map<string, [string, OptionSpec]>();
  for (const [key, spec] of Object.entries(schema)) byFlag.set(spec.flag, [key, spec]);
  const fromFlags = new Map<string, { raw: string; source: string }>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}"; options are ${[...byFlag.keys()].map((f) => `--${f}`).join(', ')}`);
    let name = arg.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    let entry = byFlag.get(name);
    if (!entry && name.startsWith('no-') && value === undefined) {
      const positive = byFlag.get(name.slice(3));
      if (positive && positive[1].kind === 'bool') {
        entry = positive;
        value = 'false';
        name = name.slice(3);
      }
    }
    if (!entry) throw new ConfigError(`unknown option --${name}; options are ${[...byFlag.keys()].map((f) => `--${f}`).join(', ')}`);
    const [key, spec] = entry;
    if (value === undefined) {
      if (spec.kind === 'bool' && (i + 1 >= argv.length || argv[i + 1].startsWith('--'))) value = 'true';
      else if (i + 1 < argv.length) value = argv[++i];
      else throw new ConfigError(`--${name}: missing value (${spec.description})`);
    }
    fromFlags.set(key, { raw: value, source: `--${name}` });
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) {
    const flagged = fromFlags.get(key);
    const envRaw = spec.env ? env[spec.env] : undefined;
    if (flagged) out[key] = convert(spec, flagged.raw, flagged.source);
    else if (envRaw !== undefined && envRaw !== '') out[key] = convert(spec, envRaw, `environment variable ${spec.env}`);
    else if (spec.default !== undefined) out[key] = spec.default;
    else if (spec.required) throw new ConfigError(`missing required option --${spec.flag}${spec.env ? ` (or ${spec.env})` : ''}: ${spec.description}`);
  }
  return out as Resolved<S>;
}

/** One line per option, for --help output. */
export function describeConfig(schema: ConfigSchema): string {
  return Object.values(schema)
    .map((s) => {
      const left = `  --${s.flag} ${s.kind === 'bool' ? '' : `<${s.kind}>`}`.padEnd(30);
      const extras = [s.env ? `env ${s.env}` : '', s.default !== undefined ? `default ${JSON.stringify(s.default)}` : '', s.required ? 'required' : '']
        .filter(Boolean)
        .join('; ');
      return `${left}${s.description}${extras ? ` (${extras})` : ''}`;
    })
    .join('\n');
}

/**
 * Parses a list flag of seeds (`--seeds 0,1,2`): integers in [0, 2^32), each
 * once, at least one. Throws a ConfigError naming `flag`, the index and value.
 */
export function parseSeeds(raw: readonly string[], flag = '--seeds'): number[] {
  if (raw.length === 0) throw new ConfigError(`${flag}: got an empty list, expected seeds such as 0,1,2`);
  return raw.map((x, i) => {
    const n = Number(x);
    if (!/^\d+$/.test(x.trim()) || !Number.isSafeInteger(n) || n > 0xffffffff) throw new ConfigError(`${flag}[${i}]: got ${JSON.stringify(x)}, expected an integer in [0, 4294967295]`);
    if (raw.indexOf(x) !== i) throw new ConfigError(`${flag}[${i}]: got ${x} again, expected each seed once`);
    return n;
  });
}
