import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FormatRule } from '@posttrain/proto';
import { compileFormatRule } from './format-rule';
import { RewardValidationError } from './reward-errors';
import { ctxFor, item } from './test-support';

const rule = (extra: Partial<FormatRule>): FormatRule => ({ requiredTags: [], answerMarker: '', nothingOutsideTags: false, ...extra });
const score = (r: FormatRule, completion: string) => compileFormatRule(r, ctxFor('format'))(item(completion), 'items[0]');

describe('format rule: required_tags', () => {
  const r1 = rule({ requiredTags: ['think', 'answer'] });
  test('both blocks, in order, score 1 (text around them allowed)', () => {
    assert.equal(score(r1, '<think>7 = 3 + 4</think>\n<answer>7</answer>'), 1);
    assert.equal(score(r1, 'Sure. <think>x</think> then <answer>7</answer> done'), 1);
    assert.equal(score(r1, '<think></think><answer></answer>'), 1);
  });
  test('wrong order, missing, duplicated, unclosed or nested blocks score 0', () => {
    assert.equal(score(r1, '<answer>7</answer><think>x</think>'), 0);
    assert.equal(score(r1, '<think>x</think>'), 0);
    assert.equal(score(r1, '<think>a</think><think>b</think><answer>7</answer>'), 0);
    assert.equal(score(r1, '<think>x</think><answer>7'), 0);
    assert.equal(score(r1, '<think>x<answer>7</answer></think>'), 0);
    assert.equal(score(r1, '</think>x<think><answer>7</answer>'), 0);
    assert.equal(score(r1, '<think>x</think><answer>7</answer></answer>'), 0);
  });
  test('tags are case-sensitive and must be exact', () => {
    assert.equal(score(r1, '<THINK>x</THINK><answer>7</answer>'), 0);
    assert.equal(score(r1, '<think >x</think><answer>7</answer>'), 0);
  });
  test('empty completion scores 0', () => {
    assert.equal(score(r1, ''), 0);
  });
  test('nothing_outside_tags allows only whitespace around the blocks', () => {
    const strict = rule({ requiredTags: ['think', 'answer'], nothingOutsideTags: true });
    assert.equal(score(strict, '  <think>x</think>\n\n<answer>7</answer>\n'), 1);
    assert.equal(score(strict, 'Sure. <think>x</think><answer>7</answer>'), 0);
    assert.equal(score(strict, '<think>x</think> so <answer>7</answer>'), 0);
    assert.equal(score(strict, '<think>x</think><answer>7</answer>.'), 0);
  });
});

describe('format rule: answer_marker', () => {
  const r = rule({ answerMarker: 'Answer:' });
  test('the last non-empty line starts with the marker and has an answer', () => {
    assert.equal(score(r, 'Work: 3 + 4 = 7\nAnswer: 7'), 1);
    assert.equal(score(r, 'Answer: 7\n\n   \n'), 1);
    assert.equal(score(r, '  Answer: 7  '), 1);
    assert.equal(score(r, 'Answer:7'), 1);
  });
  test('marker elsewhere, not last, without an answer, or an empty text score 0', () => {
    assert.equal(score(r, 'Answer: 7\nI hope that helps'), 0);
    assert.equal(score(r, 'The Answer: 7'), 0);
    assert.equal(score(r, 'Answer:   '), 0);
    assert.equal(score(r, 'Answer:\n7'), 0);
    assert.equal(score(r, ''), 0);
    assert.equal(score(r, 'answer: 7'), 0);
  });
  test('tags and marker together must both hold', () => {
    const both = rule({ requiredTags: ['think'], answerMarker: 'Answer:' });
    assert.equal(score(both, '<think>x</think>\nAnswer: 7'), 1);
    assert.equal(score(both, 'Answer: 7'), 0);
    assert.equal(score(both, '<think>x</think>'), 0);
  });
});

describe('format rule validation', () => {
  const errors: Array<[FormatRule, string]> = [
    [rule({}), 'components[0].format: checks nothing: set required_tags and/or answer_marker'],
    [rule({ answerMarker: '', nothingOutsideTags: true }), 'components[0].format.nothing_outside_tags: true, but required_tags is empty; list the tags the completion must consist of'],
    [
      rule({ requiredTags: ['think', '<answer>'] }),
      'components[0].format.required_tags[1]: got string "<answer>", expected a tag name such as "think" (a letter or _, then letters, digits, _ . : -), without angle brackets',
    ],
    [rule({ requiredTags: [''] }), 'components[0].format.required_tags[0]: got string "", expected a tag name such as "think" (a letter or _, then letters, digits, _ . : -), without angle brackets'],
    [rule({ requiredTags: ['a', 'b', 'a'] }), 'components[0].format.required_tags[2]: got "a" again (also at [0]), expected each tag once'],
    [rule({ answerMarker: ' Answer:' }), 'components[0].format.answer_marker: got string " Answer:", expected no leading or trailing whitespace (lines are trimmed before the marker is looked for)'],
    [rule({ requiredTags: 'think' as unknown as string[] }), 'components[0].format.required_tags: got string "think", expected a list of tag names'],
  ];
  for (const [r, message] of errors) {
    test(message, () => {
      assert.throws(() => compileFormatRule(r, ctxFor('format')), (err: unknown) => err instanceof RewardValidationError && err.message === message);
    });
  }
});
