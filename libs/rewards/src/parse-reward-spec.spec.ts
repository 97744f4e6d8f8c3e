import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ExtractionMode, LengthUnit, type RewardComponent } from '@posttrain/proto';
import { parseRewardSpec } from './parse-reward-spec';
import { RewardValidationError } from './reward-errors';

function rejects(spec: unknown, field: string, message: string): void {
  assert.throws(
    () => parseRewardSpec(spec),
    (err: unknown) => {
      assert.ok(err instanceof RewardValidationError, `expected RewardValidationError, got ${String(err)}`);
      assert.equal(err.message, message);
      assert.equal(err.field, field);
      return true;
    },
  );
}

describe('parseRewardSpec', () => {
  test('every rule with its parameters becomes the wire component', () => {
    const spec = JSON.parse(`[
      { "name": "correct", "weight": 1, "rule": "numeric_match", "params": { "abs_tolerance": 1e-6, "rel_tolerance": 0.01, "extraction": { "mode": "last_number" } } },
      { "name": "exact", "weight": 0.5, "rule": "exact_match", "params": {
          "extraction": { "mode": "EXTRACTION_MODE_AFTER_MARKER", "pattern": "Answer:" },
          "normalization": { "case_insensitive": true, "collapse_whitespace": true, "strip_chars": "$," } } },
      { "name": "polite", "weight": -1, "rule": "regex", "params": { "pattern": "sorry", "flags": "i", "full_match": false, "negate": true } },
      { "name": "format", "weight": 0.2, "rule": "format", "params": { "required_tags": ["think", "answer"], "nothing_outside_tags": true } },
      { "name": "len", "weight": 1, "rule": "length_penalty", "params": { "target_length": 64, "penalty_per_unit": 0.01, "max_penalty": 0.5, "unit": "Characters" } },
      { "name": "rm", "weight": 0.1, "rule": "reward_model", "params": { "expected_model_id": "rm-v1", "shift": 0.3, "scale": 2 } }
    ]`);
    const expected: RewardComponent[] = [
      { name: 'correct', weight: 1, rule: { $case: 'numericMatch', value: { extraction: { mode: ExtractionMode.LAST_NUMBER, pattern: '' }, absTolerance: 1e-6, relTolerance: 0.01 } } },
      {
        name: 'exact',
        weight: 0.5,
        rule: {
          $case: 'exactMatch',
          value: {
            extraction: { mode: ExtractionMode.AFTER_MARKER, pattern: 'Answer:' },
            normalization: { caseInsensitive: true, collapseWhitespace: true, stripChars: '$,' },
          },
        },
      },
      { name: 'polite', weight: -1, rule: { $case: 'regex', value: { pattern: 'sorry', flags: 'i', fullMatch: false, negate: true } } },
      { name: 'format', weight: 0.2, rule: { $case: 'format', value: { requiredTags: ['think', 'answer'], answerMarker: '', nothingOutsideTags: true } } },
      { name: 'len', weight: 1, rule: { $case: 'lengthPenalty', value: { targetLength: 64, penaltyPerUnit: 0.01, maxPenalty: 0.5, unit: LengthUnit.CHARACTERS } } },
      { name: 'rm', weight: 0.1, rule: { $case: 'rewardModel', value: { expectedModelId: 'rm-v1', shift: 0.3, scale: 2 } } },
    ];
    assert.deepEqual(parseRewardSpec(spec), expected);
  });
  test('defaults: name = rule name, weight = 1, params = proto defaults', () => {
    assert.deepEqual(parseRewardSpec([{ rule: 'exact_match' }]), [{ name: 'exact_match', weight: 1, rule: { $case: 'exactMatch', value: { extraction: undefined, normalization: undefined } } }]);
    assert.deepEqual(parseRewardSpec([{ rule: 'length_penalty', params: { target_length: 5, penalty_per_unit: 1 } }])[0].rule, {
      $case: 'lengthPenalty',
      value: { targetLength: 5, penaltyPerUnit: 1, maxPenalty: 0, unit: LengthUnit.UNSPECIFIED },
    });
  });

  test('unknown rule name lists the valid ones', () => {
    rejects(
      [{ rule: 'numeric_match' }, { name: 'x', rule: 'regexp', params: { pattern: 'a' } }],
      'rewards[1].rule',
      'rewards[1].rule: unknown rule string "regexp", expected one of reward_model, exact_match, numeric_match, regex, format, length_penalty',
    );
    rejects([{ name: 'x' }], 'rewards[0].rule', 'rewards[0].rule: no rule, expected one of reward_model, exact_match, numeric_match, regex, format, length_penalty');
  });
  test('unknown parameter key lists the valid ones for that rule', () => {
    rejects(
      [{ rule: 'numeric_match', params: { abs_tol: 0.1 } }],
      'rewards[0].params.abs_tol',
      'rewards[0].params.abs_tol: unknown key "abs_tol", expected one of extraction, abs_tolerance, rel_tolerance',
    );
    rejects(
      [{ rule: 'regex', params: { pattern: 'a', absTolerance: 1 } }],
      'rewards[0].params.absTolerance',
      'rewards[0].params.absTolerance: unknown key "absTolerance", expected one of pattern, flags, full_match, negate',
    );
    rejects(
      [{ rule: 'exact_match', params: { extraction: { mode: 'boxed', flags: 'i' } } }],
      'rewards[0].params.extraction.flags',
      'rewards[0].params.extraction.flags: unknown key "flags", expected one of mode, pattern',
    );
    rejects(
      [{ rule: 'exact_match', params: { normalization: { lowercase: true } } }],
      'rewards[0].params.normalization.lowercase',
      'rewards[0].params.normalization.lowercase: unknown key "lowercase", expected one of case_insensitive, collapse_whitespace, strip_chars',
    );
  });
  test('unknown entry key lists the valid ones', () => {
    rejects([{ rule: 'regex', weigth: 2, params: { pattern: 'a' } }], 'rewards[0].weigth', 'rewards[0].weigth: unknown key "weigth", expected one of name, weight, rule, params');
  });
  test('wrong types name the field and the value', () => {
    rejects([{ rule: 'numeric_match', params: { abs_tolerance: '1e-6' } }], 'rewards[0].params.abs_tolerance', 'rewards[0].params.abs_tolerance: got string "1e-6", expected a number');
    rejects([{ rule: 'regex', params: { pattern: 'a', negate: 'yes' } }], 'rewards[0].params.negate', 'rewards[0].params.negate: got string "yes", expected true or false');
    rejects([{ rule: 'format', params: { required_tags: 'think' } }], 'rewards[0].params.required_tags', 'rewards[0].params.required_tags: got string "think", expected a list of strings');
    rejects([{ rule: 'format', params: { required_tags: ['think', 3] } }], 'rewards[0].params.required_tags[1]', 'rewards[0].params.required_tags[1]: got 3, expected a string');
    rejects([{ rule: 'regex', weight: '2', params: { pattern: 'a' } }], 'rewards[0].weight', 'rewards[0].weight: got string "2", expected a finite number');
    rejects([{ rule: 'regex', name: 5, params: { pattern: 'a' } }], 'rewards[0].name', 'rewards[0].name: got 5, expected a string');
    rejects([{ rule: 'regex', params: 'a' }], 'rewards[0].params', 'rewards[0].params: got string "a", expected an object with regex parameters (pattern, flags, full_match, negate)');
    rejects(['regex'], 'rewards[0]', 'rewards[0]: got string "regex", expected an object such as { name: correct, weight: 1, rule: numeric_match, params: {...} }');
    rejects({ rule: 'regex' }, 'rewards', 'rewards: got an object, expected a list of reward components');
  });
  test('bad enum values list the valid ones', () => {
    rejects(
      [{ rule: 'numeric_match', params: { extraction: { mode: 'last-number' } } }],
      'rewards[0].params.extraction.mode',
      'rewards[0].params.extraction.mode: got string "last-number", expected one of whole, after_marker, regex, boxed, last_number',
    );
    rejects([{ rule: 'length_penalty', params: { unit: 3 } }], 'rewards[0].params.unit', 'rewards[0].params.unit: got 3, expected one of tokens, characters');
  });
  test('range and regex errors come from the shared validator, on the spec paths', () => {
    rejects([{ rule: 'numeric_match', params: { abs_tolerance: -1 } }], 'rewards[0].params.abs_tolerance', 'rewards[0].params.abs_tolerance: got -1, expected a finite number >= 0');
    rejects([{ rule: 'regex', params: { pattern: 'a', flags: 'gi' } }], 'rewards[0].params.flags', 'rewards[0].params.flags: got string "gi": flag "g" is not allowed, expected a subset of "imsu"');
    rejects(
      [{ rule: 'exact_match', params: { extraction: { mode: 'regex' } } }],
      'rewards[0].params.extraction.pattern',
      'rewards[0].params.extraction.pattern: empty, expected a regular expression for EXTRACTION_MODE_REGEX',
    );
    rejects([{ rule: 'regex', weight: Number.NaN, params: { pattern: 'a' } }], 'rewards[0].weight', 'rewards[0].weight: got NaN, expected a finite number');
    assert.throws(() => parseRewardSpec([{ rule: 'regex', params: { pattern: '[' } }]), /^RewardValidationError: rewards\[0\]\.params\.pattern: invalid regular expression: /);
  });
  test('duplicate names, including defaulted ones', () => {
    rejects(
      [{ rule: 'regex', params: { pattern: 'a' } }, { rule: 'regex', params: { pattern: 'b' } }],
      'rewards[1].name',
      'rewards[1].name: got "regex", already the name of rewards[0]; names must be unique',
    );
  });
  test('custom field prefix', () => {
    assert.throws(() => parseRewardSpec([{ rule: 'nope' }], 'grpo.rewards'), /^RewardValidationError: grpo\.rewards\[0\]\.rule: unknown rule/);
  });
});
