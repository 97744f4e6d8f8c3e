import type { Rng } from '@posttrain/random';
import { problemKey, type ArithmeticProblem, type Operation } from './arithmetic-problem';

/** What a problem is drawn from: a subset of {@link TaskOptions}. */
export interface ProblemSpace {
  readonly operations: readonly Operation[];
  readonly minDigits: number;
  readonly maxDigits: number;
}

function operand(rng: Rng, space: ProblemSpace): number {
  const digits = space.minDigits + rng.nextInt(space.maxDigits - space.minDigits + 1);
  const low = 10 ** (digits - 1);
  return low + rng.nextInt(9 * low);
}

/**
 * One problem: an operation uniformly, then each operand's number of digits
 * uniformly and its value uniformly among numbers of that many digits (so a
 * 2-digit operand is as likely as a 3-digit one). `sub` puts the larger
 * operand first; `mul` multiplies by a digit 2..9.
 */
export function sampleProblem(rng: Rng, space: ProblemSpace): ArithmeticProblem {
  const op = space.operations[rng.nextInt(space.operations.length)];
  const a = operand(rng, space);
  switch (op) {
    case 'add':
      return { op, a, b: operand(rng, space) };
    case 'sub': {
      const b = operand(rng, space);
      return a >= b ? { op, a, b } : { op, a: b, b: a };
    }
    case 'mul':
      return { op, a, b: 2 + rng.nextInt(8) };
  }
}

/** How many distinct problems (by {@link problemKey}) the space holds. */
export function problemSpaceSize(space: ProblemSpace): number {
  let numbers = 0;
  for (let d = space.minDigits; d <= space.maxDigits; d++) numbers += 9 * 10 ** (d - 1);
  const pairs = (numbers * (numbers + 1)) / 2; // unordered pairs, repeats allowed: a+b = b+a, and a-b with a >= b
  let total = 0;
  for (const op of space.operations) total += op === 'mul' ? numbers * 8 : pairs;
  return total;
}

/**
 * Draws `count` problems whose keys are neither in `exclude` nor repeated,
 * and adds their keys to `exclude` (so consecutive calls give disjoint
 * sets). Throws, instead of looping for ever, when the space is too small for
 * the request.
 */
export function sampleDistinctProblems(rng: Rng, space: ProblemSpace, count: number, exclude: Set<string>, what: string): ArithmeticProblem[] {
  const out: ArithmeticProblem[] = [];
  const maxAttempts = 50 * count + 10_000;
  for (let attempt = 0; out.length < count; attempt++) {
    if (attempt >= maxAttempts) {
      throw new Error(
        `${what}: drew only ${out.length} of ${count} distinct problems in ${maxAttempts} attempts (the space of ${space.operations.join('/')} with ${space.minDigits}-${space.maxDigits} digits holds ${problemSpaceSize(space)}, ${exclude.size} already used); lower the sizes or widen the digits`,
      );
    }
    const problem = sampleProblem(rng, space);
    const key = problemKey(problem);
    if (exclude.has(key)) continue;
    exclude.add(key);
    out.push(problem);
  }
  return out;
}
