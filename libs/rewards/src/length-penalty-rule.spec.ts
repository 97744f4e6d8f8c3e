import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LengthUnit, type LengthPenaltyRule } from '@posttrain/proto';
import { compileLengthPenalty } from './length-penalty-rule';
import { RewardValidationError } from './reward-errors';
import { ctxFor, item } from './test-support';

const rule = (targetLength: number, penaltyPerUnit: number, maxPenalty = 0, unit = LengthUnit.CHARACTERS): LengthPenaltyRule => ({
  targetLength,
  penaltyPerUnit,
  maxPenalty,
  unit,
});
const score = (r: LengthPenaltyRule, completion: string, completionTokenIds: number[] = []) =>
  compileLengthPenalty(r, ctxFor('length_penalty'))(item(completion, { completionTokenIds }), 'items[0]');

describe('length_penalty', () => {
  test('characters: no penalty up to and exactly at the target', () => {
    assert.equal(score(rule(5, 0.5), 'abc'), 0);
    assert.equal(score(rule(5, 0.5), 'abcde'), 0);
    assert.ok(Object.is(score(rule(5, 0.5), 'abcde'), 0), 'no penalty is +0, not -0');
  });
  test('characters: penalty_per_unit per unit beyond the target', () => {
    // 8 chars, target 5 -> 3 over * 0.5 = 1.5 -> -1.5.
    assert.equal(score(rule(5, 0.5), 'abcdefgh'), -1.5);
  });
  test('characters are code points: an astral character is one unit', () => {
    // "😀😀😀" is 3 code points (6 UTF-16 units): 1 over target 2 -> -1.
    assert.equal(score(rule(2, 1), '😀😀😀'), -1);
  });
  test('max_penalty caps; exactly at the cap and below it are not changed', () => {
    // 10 over * 0.25 = 2.5 capped at 1 -> -1; 4 over * 0.25 = 1 = cap -> -1; 2 over -> -0.5.
    assert.equal(score(rule(0, 0.25, 1), 'x'.repeat(10)), -1);
    assert.equal(score(rule(0, 0.25, 1), 'x'.repeat(4)), -1);
    assert.equal(score(rule(0, 0.25, 1), 'x'.repeat(2)), -0.5);
  });
  test('max_penalty 0 means no cap', () => {
    // 1000 over * 0.5 = 500.
    assert.equal(score(rule(0, 0.5, 0), 'x'.repeat(1000)), -500);
  });
  test('tokens (the unset unit) come from completion_token_ids', () => {
    const r = rule(3, 0.1, 0, LengthUnit.UNSPECIFIED);
    // 5 ids, target 3 -> 2 over * 0.1 = 0.2 (0.1 * 2 in doubles is exactly the double of 0.2).
    assert.equal(score(r, 'a much longer text than five characters', [1, 2, 3, 4, 5]), -0.2);
    assert.equal(score({ ...r, unit: LengthUnit.TOKENS }, 'hi', [9, 9, 9]), 0);
  });
  test('tokens: an empty completion has length 0 without ids', () => {
    assert.equal(score(rule(0, 1, 0, LengthUnit.TOKENS), ''), 0);
  });
  test('tokens: a non-empty completion without ids is an error naming the item field', () => {
    assert.throws(
      () => score(rule(3, 0.1, 0, LengthUnit.TOKENS), 'hello'),
      (err: unknown) =>
        err instanceof RewardValidationError &&
        err.field === 'items[0].completion_token_ids' &&
        err.message ===
          'items[0].completion_token_ids: empty for a non-empty completion (item id "it"), but components[0] ("c", length_penalty) measures length in LENGTH_UNIT_TOKENS; send the token ids or use LENGTH_UNIT_CHARACTERS',
    );
  });
  test('penalty_per_unit 0 never penalises', () => {
    assert.equal(score(rule(0, 0), 'x'.repeat(50)), 0);
  });

  const errors: Array<[LengthPenaltyRule, string]> = [
    [rule(-1, 1), 'components[0].length_penalty.target_length: got -1, expected an integer >= 0'],
    [rule(2.5, 1), 'components[0].length_penalty.target_length: got 2.5, expected an integer >= 0'],
    [rule(0, -0.1), 'components[0].length_penalty.penalty_per_unit: got -0.1, expected a finite number >= 0'],
    [rule(0, Number.NaN), 'components[0].length_penalty.penalty_per_unit: got NaN, expected a finite number >= 0'],
    [rule(0, 1, -2), 'components[0].length_penalty.max_penalty: got -2, expected a finite number >= 0'],
    [rule(0, 1, 0, 7 as LengthUnit), 'components[0].length_penalty.unit: got 7, expected LENGTH_UNIT_TOKENS or LENGTH_UNIT_CHARACTERS'],
    [rule(0, 1, 0, LengthUnit.UNRECOGNIZED), 'components[0].length_penalty.unit: got -1, expected LENGTH_UNIT_TOKENS or LENGTH_UNIT_CHARACTERS'],
  ];
  for (const [r, message] of errors) {
    test(`error: ${message}`, () => {
      assert.throws(() => compileLengthPenalty(r, ctxFor('length_penalty')), (err: unknown) => err instanceof RewardValidationError && err.message === message);
    });
  }
});
