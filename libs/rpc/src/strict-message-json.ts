import { Enum, Root, Type, type Field } from 'protobufjs';
import { protoFiles, protosDir } from './protos';

let root: Root | undefined;

function loadRoot(): Root {
  if (!root) {
    const r = new Root();
    r.resolvePath = (_origin, target) => (target.startsWith('google/') ? require.resolve(`protobufjs/${target}`) : `${protosDir()}/${target}`);
    r.loadSync(protoFiles(), { keepCase: true });
    r.resolveAll();
    root = r;
  }
  return root;
}

const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * Checks a plain object (from YAML or JSON) against a message of the
 * project's .proto files before it is decoded with the generated `fromJSON`,
 * which ignores unknown keys: every key must be a field of its message
 * (snake_case as in the .proto, or its camelCase JSON name), enums must name
 * one of their values, and nested messages are checked the same way. Errors
 * name the key path, the value and what was expected.
 */
export function checkMessageJson(typeName: string, value: unknown, source = 'config'): void {
  const type = loadRoot().lookupType(typeName);
  walk(type, value, '', source);
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function walk(type: Type, value: unknown, path: string, source: string): void {
  const where = path || '(top level)';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${source}: ${where}: expected an object (message ${type.name}), got ${describe(value)}`);
  const byName = new Map<string, Field>();
  for (const f of type.fieldsArray) {
    byName.set(f.name, f);
    byName.set(camel(f.name), f);
  }
  const seenOneofs = new Map<string, string>();
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const field = byName.get(key);
    const p = path ? `${path}.${key}` : key;
    if (!field) throw new Error(`${source}: ${p}: unknown key; ${type.name} has ${type.fieldsArray.map((f) => f.name).join(', ')}`);
    if (field.partOf && !field.partOf.name.startsWith('_') && v !== null && v !== undefined) {
      const other = seenOneofs.get(field.partOf.name);
      if (other) throw new Error(`${source}: ${p}: only one of ${field.partOf.oneof.join(', ')} may be set (${other} is set too)`);
      seenOneofs.set(field.partOf.name, key);
    }
    if (v === null || v === undefined) continue;
    const check = (item: unknown, ip: string) => checkValue(field, item, ip, source);
    if (field.map) {
      if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${source}: ${p}: expected a map, got ${describe(v)}`);
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) check(item, `${p}.${k}`);
    } else if (field.repeated) {
      if (!Array.isArray(v)) throw new Error(`${source}: ${p}: expected a list, got ${describe(v)}`);
      v.forEach((item, i) => check(item, `${p}[${i}]`));
    } else check(v, p);
  }
}

function checkValue(field: Field, v: unknown, p: string, source: string): void {
  const rt = field.resolvedType;
  if (rt instanceof Type) {
    if (rt.fullName === '.google.protobuf.Timestamp') {
      if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) throw new Error(`${source}: ${p}: expected an RFC 3339 time, got ${describe(v)}`);
      return;
    }
    walk(rt, v, p, source);
    return;
  }
  if (rt instanceof Enum) {
    const names = Object.keys(rt.values);
    if (typeof v === 'string') {
      if (!names.includes(v)) throw new Error(`${source}: ${p}: got ${describe(v)}, expected one of ${names.join(', ')}`);
      return;
    }
    if (typeof v === 'number' && Object.values(rt.values).includes(v)) return;
    throw new Error(`${source}: ${p}: got ${describe(v)}, expected one of ${names.join(', ')}`);
  }
  switch (field.type) {
    case 'string':
      if (typeof v !== 'string') throw new Error(`${source}: ${p}: expected a string, got ${describe(v)}`);
      return;
    case 'bool':
      if (typeof v !== 'boolean') throw new Error(`${source}: ${p}: expected true or false, got ${describe(v)}`);
      return;
    case 'bytes':
      if (typeof v !== 'string') throw new Error(`${source}: ${p}: expected base64 text, got ${describe(v)}`);
      return;
    case 'double':
    case 'float':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${source}: ${p}: expected a finite number, got ${describe(v)}`);
      return;
    default: {
      const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
      const unsigned = field.type.startsWith('u') || field.type.startsWith('fixed');
      if (typeof n !== 'number' || !Number.isInteger(n) || (unsigned && n < 0)) throw new Error(`${source}: ${p}: expected ${unsigned ? 'a non-negative ' : 'an '}integer, got ${describe(v)}`);
    }
  }
}
