import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ExtractionMode, type NumericMatchRule } from '@posttrain/proto';
import { compileNumericMatch } from './numeric-match-rule';
import { RewardValidationError } from './reward-errors';
import { ctxFor, item } from './test-support';

const lastNumber = { mode: ExtractionMode.LAST_NUMBER, pattern: '' };
const rule = (absTolerance = 0, relTolerance = 0, extraction = lastNumber): NumericMatchRule => ({ extraction, absTolerance, relTolerance });
const score = (r: NumericMatchRule, completion: string, groundTruth: string) =>
  compileNumericMatch(r, ctxFor('numeric_match'))(item(completion, { groundTruth }), 'items[0]');

describe('numeric_match', () => {
  test('equal numbers in different spellings score 1 with zero tolerance', () => {
    assert.equal(score(rule(), 'so the answer is 1,000', '1000'), 1);
    assert.equal(score(rule(), 'result: -7', '-7.0'), 1);
    assert.equal(score(rule(), 'about 2.5e3', '2500'), 1);
    // Tolerances left out (a partial object from TypeScript callers) read as 0.
    assert.equal(score({ extraction: lastNumber } as NumericMatchRule, '42', '42'), 1);
    assert.equal(score({ extraction: lastNumber } as NumericMatchRule, '42.5', '42'), 0);
  });
  test('zero tolerance is exact: 0.1 off scores 0', () => {
    assert.equal(score(rule(), '7.1', '7'), 0);
  });
  test('fractions parse from the whole answer (WHOLE extraction)', () => {
    const whole = { mode: ExtractionMode.WHOLE, pattern: '' };
    assert.equal(score(rule(0, 0, whole), '3/4', '0.75'), 1);
    assert.equal(score(rule(0, 0, whole), '-3/4', '-0.75'), 1);
    assert.equal(score(rule(0, 0, whole), '\\frac{1}{4}', '0.25'), 1);
    // LAST_NUMBER of "3/4" is "4": extraction decides what is compared.
    assert.equal(score(rule(), '3/4', '0.75'), 0);
  });
  test('ground truth may be a fraction too', () => {
    assert.equal(score(rule(), 'answer 0.5', '1/2'), 1);
  });
  test('absolute tolerance: |a - b| exactly at the limit passes, just beyond fails', () => {
    // |1.5 - 1| = 0.5 <= 0.5 (all three values exact in binary).
    assert.equal(score(rule(0.5), '1.5', '1'), 1);
    assert.equal(score(rule(0.5), '0.5', '1'), 1);
    // |1.5000001 - 1| = 0.5000001 > 0.5.
    assert.equal(score(rule(0.5), '1.5000001', '1'), 0);
  });
  test('relative tolerance is relative to the ground truth: |a - b| <= rel * |b|', () => {
    // b = -8, rel = 0.25 -> limit 2: a = -10 (|diff| 2) passes, a = -10.5 fails; all exact in binary.
    assert.equal(score(rule(0, 0.25), '-10', '-8'), 1);
    assert.equal(score(rule(0, 0.25), '-6', '-8'), 1);
    assert.equal(score(rule(0, 0.25), '-10.5', '-8'), 0);
    // Relative to b, not a: a = 10.25, b = 8 -> |2.25| > 0.25 * 8 = 2 -> fail, although 2.25 <= 0.25 * 10.25 = 2.5625.
    assert.equal(score(rule(0, 0.25), '10.25', '8'), 0);
  });
  test('absolute and relative tolerances add up', () => {
    // b = 4: limit = 0.5 + 0.25 * 4 = 1.5; a = 5.5 passes (diff 1.5), a = 5.75 fails (diff 1.75).
    assert.equal(score(rule(0.5, 0.25), '5.5', '4'), 1);
    assert.equal(score(rule(0.5, 0.25), '5.75', '4'), 0);
  });
  test('non-numbers and missing answers score 0', () => {
    assert.equal(score(rule(), 'I do not know', '4'), 0);
    assert.equal(score(rule(), '', '4'), 0);
    const marker = { mode: ExtractionMode.AFTER_MARKER, pattern: 'Answer:' };
    assert.equal(score(rule(1, 0, marker), 'Answer: four', '4'), 0);
    assert.equal(score(rule(1, 0, marker), 'Answer: 4 apples', '4'), 0);
    assert.equal(score(rule(1, 0, marker), 'Answer: 4', '4'), 1);
  });
  test('a ground truth that is not a number is an error on the item', () => {
    assert.throws(
      () => score(rule(), '4', 'four'),
      (err: unknown) =>
        err instanceof RewardValidationError &&
        err.message ===
          'items[0].ground_truth: got "four" (item id "it"), expected a number (integer, decimal, a/b or scientific) for components[0] ("c", numeric_match)',
    );
  });
  test('tolerances must be finite and >= 0', () => {
    for (const [r, msg] of [
      [rule(-1), 'components[0].numeric_match.abs_tolerance: got -1, expected a finite number >= 0'],
      [rule(0, Number.NaN), 'components[0].numeric_match.rel_tolerance: got NaN, expected a finite number >= 0'],
      [rule(Infinity), 'components[0].numeric_match.abs_tolerance: got Infinity, expected a finite number >= 0'],
    ] as const) {
      assert.throws(() => compileNumericMatch(r, ctxFor('numeric_match')), (err: unknown) => err instanceof RewardValidationError && err.message === msg);
    }
  });
});
