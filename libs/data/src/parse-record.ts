import type { DataConfig, DataFieldNames, DataFormat, DataStyle } from './data-config';
import { showValue } from './data-error';
import type { DataRecord } from './data-record';
import type { ChatMessage } from './tokenizer-like';

/** The format and style a file is read in, and where they were decided ('line 3', 'the config'). */
export interface RecordSchema {
  format: DataFormat;
  style: DataStyle;
  decidedBy: string;
  /** True when the config chose the format: fields of other formats on a line are then ignored, not errors (a prompt-completion file can be read as prompt-only for RL). */
  formatFromConfig: boolean;
}

/** A field-level problem with one parsed JSON line (the reader adds file and line). */
export interface FieldProblem {
  field: string | null;
  expected: string;
  got: string;
}

export type ParseResult = { ok: true; record: DataRecord; schema: RecordSchema } | { ok: false; problem: FieldProblem };

/** Ground-truth columns looked for, in order, when the config names none. */
export const DEFAULT_GROUND_TRUTH_FIELDS: readonly string[] = ['answer', 'solution'];

class FieldError extends Error {
  constructor(readonly problem: FieldProblem) {
    super(problem.expected);
  }
}

function problem(field: string | null, expected: string, value: unknown): never {
  throw new FieldError({ field, expected, got: showValue(value) });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function has(obj: Record<string, unknown>, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key) && obj[key] !== undefined;
}

/**
 * The format a JSON object looks like, from which fields it has (TRL's rules:
 * chosen+rejected is preference, with or without an explicit prompt;
 * prompt+completion; prompt alone; messages; text), and its style from the
 * main field's type (string: standard, list: conversational). Null when it has
 * none of the fields.
 */
export function detectFormat(obj: unknown, fields: DataFieldNames): { format: DataFormat; style: DataStyle } | null {
  if (!isPlainObject(obj)) return null;
  const styleOf = (value: unknown): DataStyle => (Array.isArray(value) ? 'conversational' : 'standard');
  if (has(obj, fields.chosen) || has(obj, fields.rejected)) {
    const format = has(obj, fields.prompt) ? 'preference' : 'implicit-preference';
    return { format, style: styleOf(obj[fields.chosen] ?? obj[fields.rejected]) };
  }
  if (has(obj, fields.prompt) && has(obj, fields.completion)) {
    return { format: 'prompt-completion', style: styleOf(obj[fields.prompt]) };
  }
  if (has(obj, fields.prompt)) return { format: 'prompt-only', style: styleOf(obj[fields.prompt]) };
  if (has(obj, fields.completion)) return { format: 'prompt-completion', style: styleOf(obj[fields.completion]) };
  if (has(obj, fields.messages)) return { format: 'language-modeling', style: 'conversational' };
  if (has(obj, fields.text)) return { format: 'language-modeling', style: 'standard' };
  return null;
}

function formatDescription(fields: DataFieldNames): string {
  return (
    `an object in one of the TRL formats: {"${fields.text}"}, {"${fields.messages}"}, ` +
    `{"${fields.prompt}","${fields.completion}"}, {"${fields.prompt}","${fields.chosen}","${fields.rejected}"}, ` +
    `{"${fields.chosen}","${fields.rejected}"} or {"${fields.prompt}"}`
  );
}

function describeObjectKeys(obj: Record<string, unknown>): string {
  const keys = Object.keys(obj);
  return keys.length === 0 ? 'an empty object' : `an object with fields ${keys.map((k) => JSON.stringify(k)).join(', ')}`;
}

function parseString(value: unknown, field: string, note: string): string {
  if (typeof value !== 'string' || value.length === 0) problem(field, `a non-empty string${note}`, value);
  return value;
}

function parseMessages(value: unknown, field: string, note: string): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) {
    problem(field, `a non-empty list of messages {"role","content"}${note}`, value);
  }
  return value.map((message: unknown, i) => {
    const at = `${field}[${i}]`;
    if (!isPlainObject(message)) problem(at, 'a message object {"role": string, "content": string}', message);
    const role = message.role;
    if (typeof role !== 'string' || role.length === 0) problem(`${at}.role`, 'a non-empty string', role);
    const content = message.content;
    if (typeof content !== 'string') problem(`${at}.content`, 'a string', content);
    return { role, content };
  });
}

function sameMessage(a: ChatMessage, b: ChatMessage): boolean {
  return a.role === b.role && a.content === b.content;
}

/** Length of the longest common prefix of two strings, never splitting a surrogate pair. */
export function commonPrefixLength(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let k = 0;
  while (k < n && a.charCodeAt(k) === b.charCodeAt(k)) k++;
  if (k > 0 && k < a.length && k < b.length) {
    const last = a.charCodeAt(k - 1);
    if (last >= 0xd800 && last <= 0xdbff) k--;
  }
  return k;
}

/** Number of leading messages two conversations share (same role and content). */
export function commonMessagePrefixLength(a: readonly ChatMessage[], b: readonly ChatMessage[]): number {
  const n = Math.min(a.length, b.length);
  let k = 0;
  while (k < n && sameMessage(a[k], b[k])) k++;
  return k;
}

function parseGroundTruth(obj: Record<string, unknown>, config: DataConfig): string | null {
  const named = config.groundTruthField;
  const candidates = named === null ? DEFAULT_GROUND_TRUTH_FIELDS : [named];
  for (const field of candidates) {
    if (!has(obj, field)) continue;
    const value = obj[field];
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    if (typeof value === 'string' && value.length > 0) return value;
    problem(field, 'a non-empty string or a finite number (the ground truth)', value);
  }
  if (named !== null) problem(named, 'a non-empty string or a finite number (the ground-truth column named in the config)', undefined);
  return null;
}

function parseObject(obj: Record<string, unknown>, schema: RecordSchema, config: DataConfig): DataRecord {
  const f = config.fields;
  const note = ` (${schema.style} ${schema.format} format, decided by ${schema.decidedBy})`;
  const conversational = schema.style === 'conversational';
  const content = (field: string): string | ChatMessage[] =>
    conversational ? parseMessages(obj[field], field, note) : parseString(obj[field], field, note);

  switch (schema.format) {
    case 'language-modeling': {
      if (conversational) {
        const messages = parseMessages(obj[f.messages], f.messages, note);
        if (!messages.some((m) => m.role === 'assistant')) {
          problem(f.messages, 'at least one message with role "assistant" (the turns SFT trains on)', 'none');
        }
        return { format: 'language-modeling', style: 'conversational', messages };
      }
      return { format: 'language-modeling', style: 'standard', text: parseString(obj[f.text], f.text, note) };
    }
    case 'prompt-completion': {
      const prompt = content(f.prompt);
      const completion = content(f.completion);
      return conversational
        ? { format: 'prompt-completion', style: 'conversational', prompt: prompt as ChatMessage[], completion: completion as ChatMessage[] }
        : { format: 'prompt-completion', style: 'standard', prompt: prompt as string, completion: completion as string };
    }
    case 'preference': {
      const prompt = content(f.prompt);
      const chosen = content(f.chosen);
      const rejected = content(f.rejected);
      return conversational
        ? { format: 'preference', style: 'conversational', prompt: prompt as ChatMessage[], chosen: chosen as ChatMessage[], rejected: rejected as ChatMessage[] }
        : { format: 'preference', style: 'standard', prompt: prompt as string, chosen: chosen as string, rejected: rejected as string };
    }
    case 'implicit-preference': {
      const chosen = content(f.chosen);
      const rejected = content(f.rejected);
      if (conversational) {
        const c = chosen as ChatMessage[];
        const r = rejected as ChatMessage[];
        const k = commonMessagePrefixLength(c, r);
        if (k === 0) {
          problem(f.rejected, `a conversation that shares its first messages (the implicit prompt) with "${f.chosen}"`, 'a first message that differs');
        }
        checkImplicitRemainder(k, c.length, r.length, f);
        return { format: 'implicit-preference', style: 'conversational', prompt: c.slice(0, k), chosen: c.slice(k), rejected: r.slice(k) };
      }
      const c = chosen as string;
      const r = rejected as string;
      const k = commonPrefixLength(c, r);
      checkImplicitRemainder(k, c.length, r.length, f);
      return { format: 'implicit-preference', style: 'standard', prompt: c.slice(0, k), chosen: c.slice(k), rejected: r.slice(k) };
    }
    case 'prompt-only': {
      const prompt = content(f.prompt);
      const groundTruth = parseGroundTruth(obj, config);
      return conversational
        ? { format: 'prompt-only', style: 'conversational', prompt: prompt as ChatMessage[], groundTruth }
        : { format: 'prompt-only', style: 'standard', prompt: prompt as string, groundTruth };
    }
  }
}

function checkImplicitRemainder(shared: number, chosenLength: number, rejectedLength: number, f: DataFieldNames): void {
  if (shared === chosenLength && shared === rejectedLength) {
    problem(f.rejected, `a response different from "${f.chosen}"`, 'the same value as chosen');
  }
  if (shared === chosenLength) {
    problem(f.chosen, `a response that continues past the prompt it shares with "${f.rejected}"`, 'nothing after the shared prompt');
  }
  if (shared === rejectedLength) {
    problem(f.rejected, `a response that continues past the prompt it shares with "${f.chosen}"`, 'nothing after the shared prompt');
  }
}

/**
 * Validates one parsed JSON line against a schema (or, with schema null,
 * against the format detected from the line itself, or the config's; `where`
 * names the line in the schema it returns). A line whose own fields
 * say it is in another format than the file's is a problem too, so that no
 * field is silently ignored.
 */
export function parseRecord(
  value: unknown,
  schema: RecordSchema | null,
  config: DataConfig,
  where = 'this line',
): ParseResult {
  if (!isPlainObject(value)) {
    return { ok: false, problem: { field: null, expected: formatDescription(config.fields), got: showValue(value) } };
  }
  const detected = detectFormat(value, config.fields);
  let effective = schema;
  if (effective === null) {
    if (config.format !== null) {
      const mainField = {
        'language-modeling': config.fields.messages,
        'prompt-completion': config.fields.prompt,
        preference: config.fields.chosen,
        'implicit-preference': config.fields.chosen,
        'prompt-only': config.fields.prompt,
      }[config.format];
      const guessed: DataStyle =
        config.format === 'language-modeling'
          ? has(value, config.fields.messages) ? 'conversational' : 'standard'
          : Array.isArray(value[mainField]) ? 'conversational' : 'standard';
      effective = { format: config.format, style: config.style ?? guessed, decidedBy: 'the config', formatFromConfig: true };
    } else if (detected === null) {
      return { ok: false, problem: { field: null, expected: formatDescription(config.fields), got: describeObjectKeys(value) } };
    } else {
      const decidedBy = config.style === null ? where : `${where} and the config`;
      effective = { format: detected.format, style: config.style ?? detected.style, decidedBy, formatFromConfig: false };
    }
  }
  try {
    const record = parseObject(value, effective, config);
    if (!effective.formatFromConfig && detected !== null && detected.format !== effective.format) {
      return {
        ok: false,
        problem: {
          field: null,
          expected: `a line in the ${effective.format} format (decided by ${effective.decidedBy})`,
          got: `a line in the ${detected.format} format (${describeObjectKeys(value)})`,
        },
      };
    }
    return { ok: true, record, schema: effective };
  } catch (error) {
    if (error instanceof FieldError) return { ok: false, problem: error.problem };
    throw error;
  }
}
