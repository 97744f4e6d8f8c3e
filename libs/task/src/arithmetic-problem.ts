/** The operations of the task. `mul` multiplies by a single digit (2-9), so its worked steps stay one line. */
export const OPERATIONS = ['add', 'sub', 'mul'] as const;

export type Operation = (typeof OPERATIONS)[number];

/** One problem: `a op b`. For `sub`, a >= b (answers are never negative); for `mul`, b is one digit. */
export interface ArithmeticProblem {
  readonly op: Operation;
  readonly a: number;
  readonly b: number;
}

const SYMBOL: Readonly<Record<Operation, string>> = { add: '+', sub: '-', mul: '*' };

/** The expression as the task writes it, without spaces: `347+285`, `432-285`, `47*6`. */
export function formatExpression(problem: ArithmeticProblem): string {
  return `${problem.a}${SYMBOL[problem.op]}${problem.b}`;
}

/**
 * The identity of a problem for disjoint splits: addition is commutative, so
 * `285+347` and `347+285` are the same problem and share a key.
 */
export function problemKey(problem: ArithmeticProblem): string {
  if (problem.op === 'add' && problem.b < problem.a) return `${problem.b}+${problem.a}`;
  return formatExpression(problem);
}

/** The exact answer, computed directly (the worked solution is checked against it). */
export function problemAnswer(problem: ArithmeticProblem): number {
  switch (problem.op) {
    case 'add':
      return problem.a + problem.b;
    case 'sub':
      return problem.a - problem.b;
    case 'mul':
      return problem.a * problem.b;
  }
}

/**
 * Throws unless the problem is one the task can pose: non-negative safe
 * integers, a >= b for `sub`, b in 2..9 for `mul`. Errors name the field,
 * the value and what was expected.
 */
export function validateProblem(problem: ArithmeticProblem, where = 'problem'): ArithmeticProblem {
  if (!OPERATIONS.includes(problem.op)) throw new Error(`${where}.op: got ${JSON.stringify(problem.op)}, expected one of ${OPERATIONS.join(', ')}`);
  for (const field of ['a', 'b'] as const) {
    const v = problem[field];
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${where}.${field}: got ${JSON.stringify(v)}, expected a non-negative integer`);
  }
  if (problem.op === 'sub' && problem.a < problem.b) throw new Error(`${where}: got ${problem.a}-${problem.b}, expected a >= b (answers are never negative)`);
  if (problem.op === 'mul' && (problem.b < 2 || problem.b > 9)) throw new Error(`${where}.b: got ${problem.b}, expected one digit 2..9 for mul`);
  return problem;
}
