import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRewardSpec, scoreItems, SUPPORTED_RULES, RewardValidationError, RewardPreconditionError, validateRewardComponents } from './index';

describe('@posttrain/rewards index', () => {
  test('the usage example in the package doc comment gives what it says', async () => {
    const components = parseRewardSpec([
      { name: 'correct', weight: 1, rule: 'numeric_match', params: { abs_tolerance: 1e-6, extraction: { mode: 'last_number' } } },
      { name: 'format', weight: 0.1, rule: 'format', params: { answer_marker: 'Answer:' } },
    ]);
    const [score] = await scoreItems(
      [{ id: 'q1', prompt: '12+7=', promptMessages: [], completion: '12+7 is 19.\nAnswer: 19', groundTruth: '19', completionTokenIds: [] }],
      components,
    );
    // 1 * 1 + 0.1 * 1 = 1.1 (1 + 0.1 is exactly the double 1.1).
    assert.deepEqual(score, {
      id: 'q1',
      reward: 1.1,
      components: [
        { name: 'correct', value: 1, weighted: 1 },
        { name: 'format', value: 1, weighted: 0.1 },
      ],
    });
  });
  test('SUPPORTED_RULES are the RewardComponent oneof fields of rewards.proto, in order', () => {
    assert.deepEqual([...SUPPORTED_RULES], ['reward_model', 'exact_match', 'numeric_match', 'regex', 'format', 'length_penalty']);
  });
  test('error classes are distinct, carry the field, and name themselves', () => {
    const v = new RewardValidationError('components[0].weight', 'got NaN, expected a finite number');
    const p = new RewardPreconditionError('components[0].reward_model', 'no model');
    assert.equal(v.name, 'RewardValidationError');
    assert.equal(p.name, 'RewardPreconditionError');
    assert.equal(v.field, 'components[0].weight');
    assert.ok(!(v instanceof RewardPreconditionError) && !(p instanceof RewardValidationError));
    assert.throws(() => validateRewardComponents([]), RewardValidationError);
  });
});
