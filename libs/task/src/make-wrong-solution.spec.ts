import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '@posttrain/random';
import type { ArithmeticProblem } from './arithmetic-problem';
import { applicableErrorKinds, makeWrongSolution, type ErrorKind } from './make-wrong-solution';
import { sampleProblem } from './sample-problem';
import { solveProblem } from './solve-problem';
import { formatSolution } from './task-text';
import { evaluateStep, parseStep, splitReply, valueOf } from './test-reference';

const SYMBOL = { add: '+', sub: '-', mul: '*' } as const;

describe('makeWrongSolution', () => {
  test('3000 rejected replies: always wrong, and wrong exactly in the documented way of their kind', () => {
    const problems = new Rng(5);
    const rng = new Rng(6);
    const space = { operations: ['add', 'sub', 'mul'] as const, minDigits: 2, maxDigits: 3 };
    const seen: Record<ErrorKind, number> = { 'dropped-carry': 0, 'step-slip': 0, 'wrong-final-line': 0 };
    for (let k = 0; k < 3000; k++) {
      const p: ArithmeticProblem = sampleProblem(problems, space);
      const truth = valueOf({ op: SYMBOL[p.op], a: p.a, b: p.b });
      const right = splitReply(formatSolution(p, solveProblem(p)));
      const wrong = makeWrongSolution(p, rng);
      const parsed = splitReply(wrong.text);
      const where = `${p.a}${SYMBOL[p.op]}${p.b} (${wrong.kind}): ${JSON.stringify(wrong.text)}`;
      assert.ok(right && parsed, where);
      assert.equal(parsed.answer, wrong.answer, where);
      assert.notEqual(parsed.answer, truth, where);
      seen[wrong.kind]++;
      const diff = parsed.answer - truth;
      const place = 10 ** wrong.column;
      const stepsRight = parsed.steps.map((s) => {
        const st = parseStep(s);
        assert.ok(st, `${where}: malformed step ${s}`);
        return evaluateStep(st) === st.result;
      });
      if (wrong.kind === 'wrong-final-line') {
        // Steps untouched; one answer digit off by one, same number of digits.
        assert.deepEqual(parsed.steps, right.steps, where);
        assert.equal(Math.abs(diff), place, where);
        assert.equal(String(parsed.answer).length, String(truth).length, where);
      } else if (wrong.kind === 'step-slip') {
        // Exactly the slipped step has wrong arithmetic; the answer moves by +-10^column.
        assert.deepEqual(stepsRight.map((ok, i) => ok || i === wrong.column), stepsRight.map(() => true), where);
        assert.equal(stepsRight[wrong.column], false, where);
        assert.equal(Math.abs(diff), place, where);
      } else {
        // Every step's arithmetic is right, but the column ignores the carry/borrow that came in.
        assert.ok(stepsRight.every(Boolean), where);
        const carryIn = parseStep(right.steps[wrong.column])!.terms[2];
        assert.ok(carryIn !== undefined && carryIn > 0, `${where}: no carry came into column ${wrong.column}`);
        assert.equal(parseStep(parsed.steps[wrong.column])!.terms.length, 2, where);
        assert.equal(diff, p.op === 'sub' ? place : -carryIn * place, where);
      }
    }
    for (const kind of Object.keys(seen) as ErrorKind[]) assert.ok(seen[kind] > 500, `${kind} drawn only ${seen[kind]} times in 3000`);
  });

  test('kinds that do not apply are never drawn', () => {
    // 11+11: 1+1=2, 1+1=2: no carry, so no dropped carry.
    assert.deepEqual(applicableErrorKinds({ op: 'add', a: 11, b: 11 }), ['step-slip', 'wrong-final-line']);
    assert.throws(() => makeWrongSolution({ op: 'add', a: 11, b: 11 }, new Rng(1), ['dropped-carry']), /no error of kind dropped-carry applies to 11,11 \(add\)/);
    const rng = new Rng(2);
    for (let i = 0; i < 50; i++) assert.notEqual(makeWrongSolution({ op: 'add', a: 11, b: 11 }, rng).kind, 'dropped-carry');
  });

  test('same generator state, same wrong reply', () => {
    const p: ArithmeticProblem = { op: 'add', a: 347, b: 285 };
    assert.deepEqual(makeWrongSolution(p, new Rng(9)), makeWrongSolution(p, new Rng(9)));
  });
});
