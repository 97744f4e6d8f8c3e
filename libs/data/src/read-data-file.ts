import type { DataConfig } from './data-config';
import { DataError, type DataProblem } from './data-error';
import type { DataLine } from './data-record';
import { parseRecord, type RecordSchema } from './parse-record';
import { readJsonlLines, type RawLine } from './read-jsonl-lines';

/** What reading a file found: the counts, and every problem with its line. Filled in while the file is read. */
export interface DataReadSummary {
  file: string;
  /** The format and style the file was read in; null until a valid line (or the config) decided them. */
  schema: RecordSchema | null;
  /** Physical lines, blank ones included. */
  lines: number;
  valid: number;
  invalid: number;
  /** Empty or whitespace-only lines: skipped, counted, not problems. */
  blank: number;
  problems: DataProblem[];
}

/** A validated line with the location of its bytes in the file. */
export interface LocatedDataLine extends DataLine {
  offset: number;
  byteLength: number;
}

export function createReadSummary(file: string): DataReadSummary {
  return { file, schema: null, lines: 0, valid: 0, invalid: 0, blank: 0, problems: [] };
}

/** Outcome of validating one raw line: a record, a blank line, or a problem. */
export type LineOutcome =
  | { kind: 'record'; line: LocatedDataLine; schema: RecordSchema }
  | { kind: 'blank' }
  | { kind: 'problem'; problem: DataProblem };

/**
 * Validates one raw line against the file's schema (null: not decided yet,
 * so this line decides it if valid). Pure: the caller keeps the counts.
 */
export function validateLine(file: string, raw: RawLine, schema: RecordSchema | null, config: DataConfig): LineOutcome {
  const at = { file, line: raw.line };
  if (raw.text === null) {
    return { kind: 'problem', problem: { ...at, field: null, expected: 'UTF-8 text', got: 'bytes that are not valid UTF-8' } };
  }
  if (raw.text.trim().length === 0) return { kind: 'blank' };
  let value: unknown;
  try {
    value = JSON.parse(raw.text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { kind: 'problem', problem: { ...at, field: null, expected: 'one JSON object per line', got: `malformed JSON (${reason})` } };
  }
  const result = parseRecord(value, schema, config, `line ${raw.line}`);
  if (!result.ok) return { kind: 'problem', problem: { ...at, ...result.problem } };
  const decided = schema ?? result.schema;
  return {
    kind: 'record',
    line: { line: raw.line, record: result.record, offset: raw.offset, byteLength: raw.byteLength },
    schema: decided,
  };
}

/**
 * Streams the validated records of a JSONL file with their line numbers.
 * The format is the config's, or detected from the first valid line; every
 * later line must match it. A bad line throws a {@link DataError} (errorPolicy
 * 'fail') or is skipped and recorded in `summary` (errorPolicy 'skip'). Pass a
 * summary from {@link createReadSummary} to see the counts.
 *
 *     const summary = createReadSummary(path);
 *     for await (const { line, record } of readDataFile(path, config, summary)) { ... }
 */
export async function* readDataFile(
  file: string,
  config: DataConfig,
  summary: DataReadSummary = createReadSummary(file),
): AsyncGenerator<LocatedDataLine> {
  for await (const raw of readJsonlLines(file)) {
    summary.lines++;
    const outcome = validateLine(file, raw, summary.schema, config);
    if (outcome.kind === 'blank') {
      summary.blank++;
    } else if (outcome.kind === 'problem') {
      summary.invalid++;
      summary.problems.push(outcome.problem);
      if (config.errorPolicy === 'fail') throw new DataError(outcome.problem);
    } else {
      summary.valid++;
      summary.schema ??= outcome.schema;
      yield outcome.line;
    }
  }
}

/** Reads a whole (small) file into memory; see {@link readDataFile} for the rules. */
export async function loadDataFile(file: string, config: DataConfig): Promise<{ lines: LocatedDataLine[]; summary: DataReadSummary }> {
  const summary = createReadSummary(file);
  const lines: LocatedDataLine[] = [];
  for await (const line of readDataFile(file, config, summary)) lines.push(line);
  return { lines, summary };
}
