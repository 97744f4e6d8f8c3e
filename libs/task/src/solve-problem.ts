import { validateProblem, type ArithmeticProblem } from './arithmetic-problem';

/**
 * The worked-solution format, one step per column, ones first, as a pupil
 * does it on paper; the answer alone on the last line (the `format` reward
 * rule wants "Answer:" to start the last line):
 *
 *   347+285  ->  7+5=12, 4+8+1=13, 3+2+1=6\nAnswer: 632
 *                (column sum; its tens digit is carried into the next column)
 *   432-285  ->  12-5=7, 13-8-1=4, 4-2-1=1\nAnswer: 147
 *                (a top digit written 1x borrowed 10; "-1" pays a borrow back)
 *   47*6     ->  7*6=42, 4*6+4=28\nAnswer: 282
 *                (digit product plus the carry; the last carry leads the answer)
 *
 * A missing digit of the shorter operand is written 0 (`3+0+1=4`). Short
 * steps keep a 3-digit problem under 45 characters, which a character-level
 * model of a few million parameters learns in minutes.
 */
export const ANSWER_MARKER = 'Answer:';

/** One column: the text written, the carry (or borrow) that came in, and the value written after "=". */
export interface ColumnStep {
  readonly text: string;
  readonly carryIn: number;
  readonly value: number;
}

/** A worked solution: its column steps and the answer read off them. */
export interface WorkedSolution {
  readonly steps: readonly ColumnStep[];
  readonly answer: number;
}

/**
 * A deliberate mistake in one column, propagated honestly through the
 * following columns (so a wrong solution is internally consistent, like a
 * real pupil's): `drop-carry` forgets the incoming carry or borrow; `slip`
 * writes the column's result off by `delta`.
 */
export type ColumnFault = { readonly kind: 'drop-carry'; readonly column: number } | { readonly kind: 'slip'; readonly column: number; readonly delta: 1 | -1 };

/** Little-endian decimal digits of a non-negative integer (`0` -> `[0]`). */
export function digitsOf(n: number): number[] {
  const out: number[] = [];
  let rest = n;
  do {
    out.push(rest % 10);
    rest = Math.floor(rest / 10);
  } while (rest > 0);
  return out;
}

/** The number whose little-endian digits are given (leading zeros vanish). */
function numberOf(littleEndianDigits: readonly number[]): number {
  let n = 0;
  for (let i = littleEndianDigits.length - 1; i >= 0; i--) n = n * 10 + littleEndianDigits[i];
  return n;
}

function faultAt(fault: ColumnFault | undefined, column: number): ColumnFault | undefined {
  return fault !== undefined && fault.column === column ? fault : undefined;
}

function badFault(fault: ColumnFault, problem: ArithmeticProblem, why: string): never {
  throw new Error(`fault ${JSON.stringify(fault)} does not apply to ${problem.a},${problem.b} (${problem.op}): ${why}`);
}

/** The carry (or borrow) into `column` as written: none when the column's fault drops it, which needs one to drop. */
function carryWritten(problem: ArithmeticProblem, fault: ColumnFault | undefined, column: number, carry: number, what: 'carry' | 'borrow'): number {
  if (fault?.kind !== 'drop-carry') return carry;
  if (carry === 0) badFault(fault, problem, `no ${what} comes into column ${column}`);
  return 0;
}

/** A column's result as written: off by the column's slip, which must keep it within 0..max. */
function resultWritten(problem: ArithmeticProblem, fault: ColumnFault | undefined, column: number, value: number, max: number): number {
  if (fault?.kind !== 'slip') return value;
  const written = value + fault.delta;
  if (written < 0 || written > max) badFault(fault, problem, `column ${column} would read ${written}`);
  return written;
}

function solveAdd(problem: ArithmeticProblem, fault: ColumnFault | undefined): WorkedSolution {
  const da = digitsOf(problem.a);
  const db = digitsOf(problem.b);
  const columns = Math.max(da.length, db.length);
  const steps: ColumnStep[] = [];
  const digits: number[] = [];
  let carry = 0;
  for (let i = 0; i < columns; i++) {
    const x = da[i] ?? 0;
    const y = db[i] ?? 0;
    const f = faultAt(fault, i);
    const carryIn = carryWritten(problem, f, i, carry, 'carry');
    const sum = resultWritten(problem, f, i, x + y + carryIn, 19);
    steps.push({ text: carryIn > 0 ? `${x}+${y}+${carryIn}=${sum}` : `${x}+${y}=${sum}`, carryIn, value: sum });
    digits.push(sum % 10);
    carry = Math.floor(sum / 10);
  }
  if (carry > 0) digits.push(carry);
  return { steps, answer: numberOf(digits) };
}

function solveSub(problem: ArithmeticProblem, fault: ColumnFault | undefined): WorkedSolution {
  const da = digitsOf(problem.a);
  const db = digitsOf(problem.b);
  const steps: ColumnStep[] = [];
  const digits: number[] = [];
  let borrow = 0;
  for (let i = 0; i < da.length; i++) {
    const x = da[i];
    const y = db[i] ?? 0;
    const f = faultAt(fault, i);
    const borrowIn = carryWritten(problem, f, i, borrow, 'borrow');
    // Borrow 10 from the next column when the top digit is too small.
    borrow = x - y - borrowIn < 0 ? 1 : 0;
    const top = x + 10 * borrow;
    const diff = resultWritten(problem, f, i, top - y - borrowIn, 9);
    steps.push({ text: borrowIn > 0 ? `${top}-${y}-${borrowIn}=${diff}` : `${top}-${y}=${diff}`, carryIn: borrowIn, value: diff });
    digits.push(diff);
  }
  if (borrow > 0) throw new Error(`internal: ${problem.a}-${problem.b} ends with a borrow; a >= b is required`);
  return { steps, answer: numberOf(digits) };
}

function solveMul(problem: ArithmeticProblem, fault: ColumnFault | undefined): WorkedSolution {
  const da = digitsOf(problem.a);
  const y = problem.b;
  const steps: ColumnStep[] = [];
  const digits: number[] = [];
  let carry = 0;
  for (let i = 0; i < da.length; i++) {
    const x = da[i];
    const f = faultAt(fault, i);
    const carryIn = carryWritten(problem, f, i, carry, 'carry');
    const product = resultWritten(problem, f, i, x * y + carryIn, 89);
    steps.push({ text: carryIn > 0 ? `${x}*${y}+${carryIn}=${product}` : `${x}*${y}=${product}`, carryIn, value: product });
    digits.push(product % 10);
    carry = Math.floor(product / 10);
  }
  digits.push(...(carry > 0 ? digitsOf(carry) : []));
  return { steps, answer: numberOf(digits) };
}

/**
 * Works the problem column by column and reads the answer off the written
 * steps (not from `a op b` directly), so that with a `fault` the answer is
 * what that mistake leads to. Throws if the fault cannot occur in that
 * column (no carry to drop, a slip out of the column's range).
 */
export function solveProblem(problem: ArithmeticProblem, fault?: ColumnFault): WorkedSolution {
  validateProblem(problem);
  switch (problem.op) {
    case 'add':
      return solveAdd(problem, fault);
    case 'sub':
      return solveSub(problem, fault);
    case 'mul':
      return solveMul(problem, fault);
  }
}
