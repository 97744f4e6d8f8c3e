import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ExtractionMode, LengthUnit, RewardComponent } from '@posttrain/proto';
import { RewardValidationError } from './reward-errors';
import { compileRewardComponents, validateRewardComponents } from './validate-reward-components';

const regex = (name: string, pattern: string, flags = ''): RewardComponent => ({
  name,
  weight: 1,
  rule: { $case: 'regex', value: { pattern, flags, fullMatch: false, negate: false } },
});
const numeric: RewardComponent = {
  name: 'correct',
  weight: 1,
  rule: { $case: 'numericMatch', value: { extraction: { mode: ExtractionMode.LAST_NUMBER, pattern: '' }, absTolerance: 1e-6, relTolerance: 0 } },
};

function rejects(components: RewardComponent[], field: string, message: string, prefix?: string): void {
  assert.throws(
    () => validateRewardComponents(components, prefix),
    (err: unknown) => {
      assert.ok(err instanceof RewardValidationError, `expected RewardValidationError, got ${String(err)}`);
      assert.equal(err.field, field);
      assert.equal(err.message, message);
      return true;
    },
  );
}

describe('validateRewardComponents', () => {
  test('a valid mix of every rule passes', () => {
    const all: RewardComponent[] = [
      { name: 'rm', weight: 0.5, rule: { $case: 'rewardModel', value: { expectedModelId: '', shift: 0, scale: 0 } } },
      { name: 'exact', weight: 1, rule: { $case: 'exactMatch', value: {} } },
      numeric,
      regex('no-sorry', 'sorry', 'i'),
      { name: 'format', weight: 0.2, rule: { $case: 'format', value: { requiredTags: ['think', 'answer'], answerMarker: '', nothingOutsideTags: true } } },
      { name: 'len', weight: 1, rule: { $case: 'lengthPenalty', value: { targetLength: 10, penaltyPerUnit: 0.01, maxPenalty: 1, unit: LengthUnit.TOKENS } } },
    ];
    validateRewardComponents(all);
    const compiled = compileRewardComponents(all);
    assert.deepEqual(
      compiled.map((c) => [c.name, c.ruleName, c.kind, c.paramsPath]),
      [
        ['rm', 'reward_model', 'reward_model', 'components[0].reward_model'],
        ['exact', 'exact_match', 'rule', 'components[1].exact_match'],
        ['correct', 'numeric_match', 'rule', 'components[2].numeric_match'],
        ['no-sorry', 'regex', 'rule', 'components[3].regex'],
        ['format', 'format', 'rule', 'components[4].format'],
        ['len', 'length_penalty', 'rule', 'components[5].length_penalty'],
      ],
    );
  });
  test('objects built with the generated fromPartial pass', () => {
    validateRewardComponents([RewardComponent.fromPartial({ name: 'r', weight: 1, rule: { $case: 'regex', value: { pattern: 'x' } } })]);
  });
  test('reward_model scale 0 means 1', () => {
    const [c] = compileRewardComponents([{ name: 'rm', weight: 1, rule: { $case: 'rewardModel', value: { expectedModelId: '', shift: 2, scale: 0 } } }]);
    assert.ok(c.kind === 'reward_model');
    assert.deepEqual(c.rewardModel, { expectedModelId: '', shift: 2, scale: 1 });
  });

  test('bad regex names the exact field', () => {
    assert.throws(
      () => validateRewardComponents([numeric, regex('r', '(a')]),
      (err: unknown) =>
        err instanceof RewardValidationError &&
        err.field === 'components[1].regex.pattern' &&
        err.message.startsWith('components[1].regex.pattern: invalid regular expression: '),
    );
  });
  test('weight NaN / Infinity / non-number', () => {
    rejects([{ ...numeric, weight: Number.NaN }], 'components[0].weight', 'components[0].weight: got NaN, expected a finite number');
    rejects([{ ...numeric, weight: -Infinity }], 'components[0].weight', 'components[0].weight: got -Infinity, expected a finite number');
    rejects([{ ...numeric, weight: '1' as unknown as number }], 'components[0].weight', 'components[0].weight: got string "1", expected a finite number');
  });
  test('negative and zero weights are allowed', () => {
    validateRewardComponents([{ ...numeric, weight: -2 }, { ...regex('r', 'x'), weight: 0 }]);
  });
  test('no rule set', () => {
    rejects(
      [numeric, regex('a', 'x'), { name: 'empty', weight: 1 }],
      'components[2].rule',
      'components[2].rule: no rule set, expected one of reward_model, exact_match, numeric_match, regex, format, length_penalty',
    );
    rejects(
      [{ name: 'odd', weight: 1, rule: { $case: 'bogus', value: {} } as unknown as RewardComponent['rule'] }],
      'components[0].rule',
      'components[0].rule: no rule set, expected one of reward_model, exact_match, numeric_match, regex, format, length_penalty',
    );
  });
  test('names: empty, whitespace, duplicate', () => {
    rejects([{ ...numeric, name: '' }], 'components[0].name', 'components[0].name: got string "", expected a non-empty name (it becomes the metric "rewards/<name>")');
    rejects(
      [{ ...numeric, name: 'my reward' }],
      'components[0].name',
      'components[0].name: got string "my reward", expected at most 100 characters without whitespace or control characters',
    );
    rejects([numeric, regex('x', 'a'), regex('correct', 'b')], 'components[2].name', 'components[2].name: got "correct", already the name of components[0]; names must be unique');
  });
  test('empty list and non-list', () => {
    rejects([], 'components', 'components: got an empty list, expected at least one reward component');
    rejects('nope' as unknown as RewardComponent[], 'components', 'components: got string "nope", expected a list of reward components');
  });
  test('reward_model shift and scale must be finite', () => {
    rejects(
      [{ name: 'rm', weight: 1, rule: { $case: 'rewardModel', value: { expectedModelId: '', shift: Number.NaN, scale: 1 } } }],
      'components[0].reward_model.shift',
      'components[0].reward_model.shift: got NaN, expected a finite number',
    );
    rejects(
      [{ name: 'rm', weight: 1, rule: { $case: 'rewardModel', value: { expectedModelId: '', shift: 0, scale: Infinity } } }],
      'components[0].reward_model.scale',
      'components[0].reward_model.scale: got Infinity, expected a finite number',
    );
  });
  test('nested extraction paths', () => {
    rejects(
      [{ name: 'e', weight: 1, rule: { $case: 'exactMatch', value: { extraction: { mode: ExtractionMode.AFTER_MARKER, pattern: '' } } } }],
      'components[0].exact_match.extraction.pattern',
      'components[0].exact_match.extraction.pattern: empty, expected a marker such as "Answer:" for EXTRACTION_MODE_AFTER_MARKER',
    );
  });
  test('field prefix', () => {
    rejects([{ ...numeric, weight: Number.NaN }], 'run.rewards[0].weight', 'run.rewards[0].weight: got NaN, expected a finite number', 'run.rewards');
  });
});
