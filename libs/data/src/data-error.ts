/**
 * One problem with one line of a data file: where it is, which field, what was
 * expected and what was found. Collected by the readers (errorPolicy 'skip')
 * or thrown inside a {@link DataError} (errorPolicy 'fail').
 */
export interface DataProblem {
  /** Path of the data file, as given by the caller. */
  readonly file: string;
  /** 1-based line number in the file. */
  readonly line: number;
  /** Field path inside the line ('prompt', 'messages[2].role'), or null when the whole line is at fault (malformed JSON). */
  readonly field: string | null;
  /** What the line should have held. */
  readonly expected: string;
  /** A short rendering of what was there instead. */
  readonly got: string;
}

/** Renders a problem as `file:line: field "x": expected ..., got ...`. */
export function describeProblem(problem: DataProblem): string {
  const where = `${problem.file}:${problem.line}`;
  const field = problem.field === null ? '' : ` field "${problem.field}":`;
  return `${where}:${field} expected ${problem.expected}, got ${problem.got}`;
}

/** Error thrown for a bad data line when errorPolicy is 'fail'. */
export class DataError extends Error {
  readonly problem: DataProblem;

  constructor(problem: DataProblem) {
    super(describeProblem(problem));
    this.name = 'DataError';
    this.problem = problem;
  }
}

/** A short, bounded rendering of a JSON value for error messages. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing (field missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${value.length}`;
  if (typeof value === 'string') {
    if (value.length === 0) return 'an empty string';
    const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value;
    return `string ${JSON.stringify(shown)}`;
  }
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
