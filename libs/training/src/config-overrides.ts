/**
 * `--set key=value` overrides of a run config, the one implementation every
 * `posttrain` stage command uses. Each value is typed by the schema, so
 * `train.learning_rate=3e-4` is a number and `lora=null` drops a section.
 */
import { parse as parseYaml } from 'yaml';
import { describeField, fieldAt, RUN_CONFIG_SCHEMA, type Field } from './run-config-schema';
import { RunConfigError } from './run-config-types';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The known keys next to an unknown one, for its error. */
function knownKeysAt(path: readonly string[]): string {
  const parent = path.length > 1 ? fieldAt(path.slice(0, -1)) : null;
  const fields = path.length === 1 ? RUN_CONFIG_SCHEMA : parent?.kind === 'section' ? parent.fields : null;
  return fields ? ` (known keys${path.length > 1 ? ` of ${path.slice(0, -1).join('.')}` : ''}: ${Object.keys(fields).join(', ')})` : '';
}

function parseOverrideValue(field: Field, text: string, key: string): unknown {
  if (text === 'null' && (('nullable' in field && field.nullable) || field.kind === 'section')) return null;
  switch (field.kind) {
    case 'int':
    case 'number': {
      const number = text.trim() === '' ? Number.NaN : Number(text);
      if (!Number.isFinite(number)) throw new RunConfigError(`--set ${key}=${text}: expected ${describeField(field)}, got ${JSON.stringify(text)}`);
      return number;
    }
    case 'bool':
      if (text === 'true') return true;
      if (text === 'false') return false;
      throw new RunConfigError(`--set ${key}=${text}: expected true or false, got ${JSON.stringify(text)}`);
    case 'string':
    case 'enum':
      return text;
    case 'list': {
      if (text.startsWith('[')) {
        try {
          return parseYaml(text) as unknown;
        } catch {
          throw new RunConfigError(`--set ${key}=${text}: expected a YAML or JSON list, or comma-separated values`);
        }
      }
      const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
      return field.of === 'int' ? items.map(Number) : items;
    }
    case 'section':
      throw new RunConfigError(`--set ${key}=${text}: ${key} is a section; set one of its keys (${Object.keys(field.fields).map((sub) => `${key}.${sub}`).join(', ')}) or null`);
  }
}

/**
 * Applies `key=value` overrides (dotted key paths, e.g. `train.learning_rate=3e-4`,
 * `lora.target_modules=q_proj,v_proj`, `lora=null`) to a raw config object, typing
 * each value by the schema. Returns a new object; validate it with parseRunConfig.
 */
export function applyConfigOverrides(raw: unknown, overrides: readonly string[]): Record<string, unknown> {
  const result = structuredClone(isPlainObject(raw) ? raw : {}) as Record<string, unknown>;
  for (const override of overrides) {
    const eq = override.indexOf('=');
    if (eq <= 0) throw new RunConfigError(`--set ${override}: expected key=value (e.g. train.learning_rate=1e-4)`);
    const key = override.slice(0, eq).trim();
    const text = override.slice(eq + 1);
    const path = key.split('.');
    const field = fieldAt(path);
    if (field === null) throw new RunConfigError(`--set ${override}: unknown key ${JSON.stringify(key)}${knownKeysAt(path)}`);
    const value = parseOverrideValue(field, text, key);
    let section = result;
    for (const part of path.slice(0, -1)) {
      if (!isPlainObject(section[part])) section[part] = {};
      section = section[part] as Record<string, unknown>;
    }
    section[path[path.length - 1]] = value;
  }
  return result;
}
