import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '@posttrain/random';
import { problemAnswer, type ArithmeticProblem } from './arithmetic-problem';
import { sampleProblem } from './sample-problem';
import { solveProblem } from './solve-problem';
import { formatSolution } from './task-text';
import { evaluateStep, parseStep, splitReply } from './test-reference';

const reply = (p: ArithmeticProblem) => formatSolution(p, solveProblem(p));

/**
 * Re-checks a worked reply from its text alone, like a teacher: every step's
 * arithmetic is right, its operands are the right digits of a and b, the
 * carry/borrow it uses is the one the previous step produced, and the
 * answer's digits are the steps' digits. Returns the problems found.
 */
function audit(p: ArithmeticProblem, text: string): string[] {
  const issues: string[] = [];
  const parsed = splitReply(text);
  if (!parsed) return [`not in the reply format: ${JSON.stringify(text)}`];
  const digit = (n: number, i: number) => Math.floor(n / 10 ** i) % 10;
  const width = p.op === 'mul' ? String(p.a).length : Math.max(String(p.a).length, String(p.b).length);
  if (parsed.steps.length !== width) issues.push(`expected ${width} steps, got ${parsed.steps.length}`);
  let carry = 0;
  let answer = 0;
  parsed.steps.forEach((s, i) => {
    const step = parseStep(s);
    if (!step) {
      issues.push(`step ${i} malformed: ${s}`);
      return;
    }
    if (evaluateStep(step) !== step.result) issues.push(`step ${i} wrong arithmetic: ${s}`);
    const extra = step.terms.length === 3 ? step.terms[2] : 0;
    if (extra !== carry) issues.push(`step ${i} carries ${extra}, expected ${carry}: ${s}`);
    if (p.op === 'add') {
      if (step.terms[0] !== digit(p.a, i) || step.terms[1] !== digit(p.b, i)) issues.push(`step ${i} operands: ${s}`);
      answer += (step.result % 10) * 10 ** i;
      carry = Math.floor(step.result / 10);
    } else if (p.op === 'sub') {
      // A borrowed top reads 1x: the top is digit + 10, and that borrow is paid next column.
      const borrowed = step.terms[0] >= 10;
      if (step.terms[0] - (borrowed ? 10 : 0) !== digit(p.a, i) || step.terms[1] !== digit(p.b, i)) issues.push(`step ${i} operands: ${s}`);
      if (step.result < 0 || step.result > 9) issues.push(`step ${i} result not a digit: ${s}`);
      if (borrowed !== digit(p.a, i) - digit(p.b, i) - carry < 0) issues.push(`step ${i} borrows when it need not (or not when it must): ${s}`);
      answer += step.result * 10 ** i;
      carry = borrowed ? 1 : 0;
    } else {
      if (step.terms[0] !== digit(p.a, i) || step.terms[1] !== p.b) issues.push(`step ${i} operands: ${s}`);
      answer += (step.result % 10) * 10 ** i;
      carry = Math.floor(step.result / 10);
    }
  });
  if (p.op !== 'sub') answer += carry * 10 ** parsed.steps.length;
  else if (carry !== 0) issues.push('subtraction ends with an unpaid borrow');
  if (answer !== parsed.answer) issues.push(`answer line ${parsed.answer} but the steps give ${answer}`);
  if (parsed.result !== parsed.answer) issues.push(`the sentence says ${parsed.result}, the answer line ${parsed.answer}`);
  return issues;
}

describe('solveProblem', () => {
  test('worked by hand', () => {
    // 347+285: 7+5=12 (write 2, carry 1); 4+8+1=13 (3, carry 1); 3+2+1=6 -> 632.
    assert.equal(reply({ op: 'add', a: 347, b: 285 }), 'To add 347 and 285: 7+5=12, 4+8+1=13, 3+2+1=6, so the sum is 632.\nAnswer: 632');
    // 847+85: a missing digit is 0; the last carry leads: 7+5=12, 4+8+1=13, 8+0+1=9 -> 932.
    assert.equal(reply({ op: 'add', a: 847, b: 85 }), 'To add 847 and 85: 7+5=12, 4+8+1=13, 8+0+1=9, so the sum is 932.\nAnswer: 932');
    // 95+17: 5+7=12, 9+1+1=11 -> digits 2,1 and a final carry 1 -> 112.
    assert.equal(reply({ op: 'add', a: 95, b: 17 }), 'To add 95 and 17: 5+7=12, 9+1+1=11, so the sum is 112.\nAnswer: 112');
    // 432-285: 2<5 borrow: 12-5=7; 3-8-1<0 borrow: 13-8-1=4; 4-2-1=1 -> 147.
    assert.equal(reply({ op: 'sub', a: 432, b: 285 }), 'To take 285 from 432: 12-5=7, 13-8-1=4, 4-2-1=1, so the difference is 147.\nAnswer: 147');
    // 305-298: 15-8=7, 10-9-1=0, 3-2-1=0 -> 007 = 7.
    assert.equal(reply({ op: 'sub', a: 305, b: 298 }), 'To take 298 from 305: 15-8=7, 10-9-1=0, 3-2-1=0, so the difference is 7.\nAnswer: 7');
    // 47*6: 7*6=42 (write 2, carry 4); 4*6+4=28 -> 282.
    assert.equal(reply({ op: 'mul', a: 47, b: 6 }), 'To multiply 47 by 6: 7*6=42, 4*6+4=28, so the product is 282.\nAnswer: 282');
    // 999*9: 81, 9*9+8=89, 9*9+8=89 -> 8991.
    assert.equal(reply({ op: 'mul', a: 999, b: 9 }), 'To multiply 999 by 9: 9*9=81, 9*9+8=89, 9*9+8=89, so the product is 8991.\nAnswer: 8991');
  });

  test('every worked solution of 3000 random problems passes an independent audit and equals a op b', () => {
    const rng = new Rng(11);
    const space = { operations: ['add', 'sub', 'mul'] as const, minDigits: 2, maxDigits: 3 };
    for (let k = 0; k < 3000; k++) {
      const p = sampleProblem(rng, space);
      const text = reply(p);
      assert.deepEqual(audit(p, text), [], `${p.a} ${p.op} ${p.b}: ${text}`);
      assert.equal(splitReply(text)?.answer, p.op === 'add' ? p.a + p.b : p.op === 'sub' ? p.a - p.b : p.a * p.b);
      assert.equal(solveProblem(p).answer, problemAnswer(p));
    }
  });

  test('a fault is propagated: the answer moves by exactly the mistake times its column', () => {
    // Dropping the carry into the tens of 347+285: 4+8=12 instead of 13, so 632 - 10 = 622.
    const dropped = solveProblem({ op: 'add', a: 347, b: 285 }, { kind: 'drop-carry', column: 1 });
    assert.equal(formatSolution({ op: 'add', a: 347, b: 285 }, dropped), 'To add 347 and 285: 7+5=12, 4+8=12, 3+2+1=6, so the sum is 622.\nAnswer: 622');
    // A slip of +1 in the ones of 95+17 (5+7=13): 113.
    assert.equal(solveProblem({ op: 'add', a: 95, b: 17 }, { kind: 'slip', column: 0, delta: 1 }).answer, 113);
    // Dropping the borrow into the tens of 432-285: 3-8 still borrows, 13-8=5; 4-2-1=1 -> 157 = 147 + 10.
    assert.equal(formatSolution({ op: 'sub', a: 432, b: 285 }, solveProblem({ op: 'sub', a: 432, b: 285 }, { kind: 'drop-carry', column: 1 })), 'To take 285 from 432: 12-5=7, 13-8=5, 4-2-1=1, so the difference is 157.\nAnswer: 157');
    // Dropping the carry 4 in 47*6: 4*6=24 -> 242 = 282 - 40.
    assert.equal(solveProblem({ op: 'mul', a: 47, b: 6 }, { kind: 'drop-carry', column: 1 }).answer, 242);
  });

  test('a fault that cannot happen is refused, naming the problem', () => {
    assert.throws(() => solveProblem({ op: 'add', a: 11, b: 11 }, { kind: 'drop-carry', column: 1 }), /no carry comes into column 1/);
    assert.throws(() => solveProblem({ op: 'sub', a: 50, b: 10 }, { kind: 'slip', column: 0, delta: -1 }), /column 0 would read -1/);
    assert.throws(() => solveProblem({ op: 'sub', a: 10, b: 20 }), /expected a >= b/);
    assert.throws(() => solveProblem({ op: 'mul', a: 10, b: 12 }), /problem\.b: got 12, expected one digit 2\.\.9/);
  });
});
