import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ExtractionMode, type ExactMatchRule } from '@posttrain/proto';
import { compileExactMatch } from './exact-match-rule';
import { RewardValidationError } from './reward-errors';
import { ctxFor, item } from './test-support';

const score = (rule: ExactMatchRule, completion: string, groundTruth: string | undefined) =>
  compileExactMatch(rule, ctxFor('exact_match'))(item(completion, { groundTruth }), 'items[0]');

describe('exact_match', () => {
  test('whole completion equal to the ground truth scores 1, else 0', () => {
    assert.equal(score({}, 'Paris', 'Paris'), 1);
    assert.equal(score({}, 'paris', 'Paris'), 0);
    assert.equal(score({}, 'Paris!', 'Paris'), 0);
  });
  test('surrounding whitespace of the extracted answer is trimmed by extraction; inner whitespace matters without collapse', () => {
    assert.equal(score({}, '  Paris \n', 'Paris'), 1);
    assert.equal(score({}, 'New  York', 'New York'), 0);
    // The ground truth's ends are trimmed too, like the extracted answer's.
    assert.equal(score({}, 'Paris', ' Paris\n'), 1);
    assert.equal(score({ normalization: { caseInsensitive: false, collapseWhitespace: true, stripChars: '' } }, 'New  York', 'New York'), 1);
  });
  test('normalisation applies to both sides', () => {
    const rule: ExactMatchRule = { normalization: { caseInsensitive: true, collapseWhitespace: true, stripChars: '.' } };
    assert.equal(score(rule, 'new york.', '  NEW   York '), 1);
  });
  test('numbers compare canonically: 1,000 = 1000 = +1000.0', () => {
    const rule: ExactMatchRule = { extraction: { mode: ExtractionMode.AFTER_MARKER, pattern: 'Answer:' } };
    assert.equal(score(rule, 'Answer: 1,000', '1000'), 1);
    assert.equal(score(rule, 'Answer: +1000.0', '1,000'), 1);
    assert.equal(score(rule, 'Answer: 1000.5', '1000'), 0);
    assert.equal(score(rule, 'Answer: -3', '-3.00'), 1);
  });
  test('boxed extraction with a LaTeX answer', () => {
    const rule: ExactMatchRule = { extraction: { mode: ExtractionMode.BOXED, pattern: '' } };
    assert.equal(score(rule, 'thus \\boxed{\\frac{1}{2}}', '\\frac{1}{2}'), 1);
  });
  test('no answer scores 0, even against an empty ground truth', () => {
    assert.equal(score({}, '', ''), 0);
    const rule: ExactMatchRule = { extraction: { mode: ExtractionMode.AFTER_MARKER, pattern: 'Answer:' } };
    assert.equal(score(rule, 'I think 42', '42'), 0);
  });
  test('a missing ground truth is an error naming the item field, the item id and the component', () => {
    assert.throws(
      () => score({}, 'x', undefined),
      (err: unknown) =>
        err instanceof RewardValidationError &&
        err.field === 'items[0].ground_truth' &&
        err.message === 'items[0].ground_truth: missing (item id "it"), but components[0] ("c", exact_match) compares answers against it',
    );
  });
  test('bad normalisation fields are named', () => {
    assert.throws(
      () => compileExactMatch({ normalization: { caseInsensitive: 'yes' as unknown as boolean, collapseWhitespace: false, stripChars: '' } }, ctxFor('exact_match')),
      /^RewardValidationError: components\[0\]\.exact_match\.normalization\.case_insensitive: got string "yes", expected true or false$/,
    );
  });
});
