import type { Rng } from '@posttrain/random';
import { problemAnswer, type ArithmeticProblem } from './arithmetic-problem';
import { digitsOf, solveProblem, type ColumnFault } from './solve-problem';
import { formatSolution, type ReplyStyle } from './task-text';

/**
 * The plausible mistakes of a rejected answer:
 * - `dropped-carry`: a column forgets the carry (or, in subtraction, the
 *   borrow) that came into it; later columns follow from the mistake. The
 *   answer moves by -carry * 10^column (+10^column for a dropped borrow).
 * - `step-slip`: one column's result is written off by one (`4+8+1=14`);
 *   later columns follow. The answer moves by delta * 10^column.
 * - `wrong-final-line`: every step is right, but one digit of the answer
 *   line is off by one (`Answer: 642` after steps giving 632); the answer
 *   keeps its number of digits.
 */
export type ErrorKind = 'dropped-carry' | 'step-slip' | 'wrong-final-line';

export const ERROR_KINDS: readonly ErrorKind[] = ['dropped-carry', 'step-slip', 'wrong-final-line'];

export interface WrongSolution {
  readonly kind: ErrorKind;
  /** The column (0 = ones) of the mistake: of the step, or of the answer digit for wrong-final-line. */
  readonly column: number;
  /** The wrong answer written on the Answer line. */
  readonly answer: number;
  /** The whole reply, in the same format as the correct one. */
  readonly text: string;
}

/** The values a column may be written with, per operation (a slip never leaves them). */
const COLUMN_RANGE: Readonly<Record<ArithmeticProblem['op'], readonly [number, number]>> = {
  add: [0, 19], // x + y + carry <= 9 + 9 + 1
  sub: [0, 9], // one digit after borrowing
  mul: [0, 89], // x * y + carry <= 9 * 9 + 8
};

/** Every mistake of each kind that this problem admits. */
function candidates(problem: ArithmeticProblem): Record<ErrorKind, (ColumnFault | { kind: 'final'; column: number; delta: 1 | -1 })[]> {
  const right = solveProblem(problem);
  const [low, high] = COLUMN_RANGE[problem.op];
  const dropped: ColumnFault[] = [];
  const slips: ColumnFault[] = [];
  right.steps.forEach((step, column) => {
    if (step.carryIn > 0) dropped.push({ kind: 'drop-carry', column });
    for (const delta of [1, -1] as const) {
      const v = step.value + delta;
      if (v >= low && v <= high) slips.push({ kind: 'slip', column, delta });
    }
  });
  const finals: { kind: 'final'; column: number; delta: 1 | -1 }[] = [];
  const width = digitsOf(right.answer).length;
  for (let column = 0; column < width; column++) {
    for (const delta of [1, -1] as const) {
      const wrong = right.answer + delta * 10 ** column;
      if (wrong >= 0 && digitsOf(wrong).length === width) finals.push({ kind: 'final', column, delta });
    }
  }
  return { 'dropped-carry': dropped, 'step-slip': slips, 'wrong-final-line': finals };
}

/** The error kinds this problem admits (a problem with no carry or borrow has no dropped-carry). */
export function applicableErrorKinds(problem: ArithmeticProblem): ErrorKind[] {
  const all = candidates(problem);
  return ERROR_KINDS.filter((k) => all[k].length > 0);
}

/**
 * A plausible wrong reply to `problem`: a kind drawn uniformly from those in
 * `kinds` that the problem admits, then one of its mistakes uniformly. Throws
 * when none of `kinds` applies.
 */
export function makeWrongSolution(problem: ArithmeticProblem, rng: Rng, kinds: readonly ErrorKind[] = ERROR_KINDS, style: ReplyStyle = 'direct'): WrongSolution {
  const all = candidates(problem);
  const usable = kinds.filter((k) => all[k].length > 0);
  if (usable.length === 0) {
    throw new Error(`no error of kind ${kinds.join(', ')} applies to ${problem.a},${problem.b} (${problem.op})`);
  }
  const kind = usable[rng.nextInt(usable.length)];
  const options = all[kind];
  const pick = options[rng.nextInt(options.length)];
  if (pick.kind === 'final') {
    const right = solveProblem(problem);
    const answer = right.answer + pick.delta * 10 ** pick.column;
    return { kind, column: pick.column, answer, text: formatSolution(problem, right, answer, style) };
  }
  const wrong = solveProblem(problem, pick);
  if (wrong.answer === problemAnswer(problem)) throw new Error(`internal: fault ${JSON.stringify(pick)} left ${problem.a},${problem.b} (${problem.op}) correct`);
  return { kind, column: pick.column, answer: wrong.answer, text: formatSolution(problem, wrong, wrong.answer, style) };
}
