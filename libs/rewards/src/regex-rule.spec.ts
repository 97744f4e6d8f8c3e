import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RegexRule } from '@posttrain/proto';
import { compileRegexRule } from './regex-rule';
import { RewardValidationError } from './reward-errors';
import { ctxFor, item } from './test-support';

const rule = (pattern: string, extra: Partial<RegexRule> = {}): RegexRule => ({ pattern, flags: '', fullMatch: false, negate: false, ...extra });
const score = (r: RegexRule, completion: string) => compileRegexRule(r, ctxFor('regex'))(item(completion), 'items[0]');

describe('regex rule', () => {
  test('search: a match anywhere scores 1', () => {
    assert.equal(score(rule('\\d+'), 'abc 12 def'), 1);
    assert.equal(score(rule('\\d+'), 'no digits'), 0);
  });
  test('negate inverts', () => {
    assert.equal(score(rule('sorry', { negate: true }), 'Here is the answer'), 1);
    assert.equal(score(rule('sorry', { negate: true }), 'I am sorry'), 0);
  });
  test('full_match needs the whole completion to match', () => {
    const r = rule('Answer: \\d+', { fullMatch: true });
    assert.equal(score(r, 'Answer: 42'), 1);
    assert.equal(score(r, 'Answer: 42.'), 0);
    assert.equal(score(r, 'x Answer: 42'), 0);
    assert.equal(score(rule('', { fullMatch: true, pattern: 'a*' }), ''), 1);
  });
  test('full_match tries every alternative (a|ab on "ab")', () => {
    assert.equal(score(rule('a|ab', { fullMatch: true }), 'ab'), 1);
  });
  test('full_match is anchored at the text ends even with the m flag', () => {
    // With m, ^...$ inside the pattern match one line; the full-match anchor is still the whole text.
    assert.equal(score(rule('^\\d+$', { fullMatch: true, flags: 'm' }), '12\n34'), 0);
    assert.equal(score(rule('^\\d+$', { flags: 'm' }), 'x\n34'), 1);
    assert.equal(score(rule('^\\d+$'), 'x\n34'), 0);
  });
  test('full_match with negate', () => {
    assert.equal(score(rule('\\d+', { fullMatch: true, negate: true }), '12a'), 1);
    assert.equal(score(rule('\\d+', { fullMatch: true, negate: true }), '12'), 0);
  });
  test('flags: i, s, u', () => {
    assert.equal(score(rule('answer'), 'ANSWER'), 0);
    assert.equal(score(rule('answer', { flags: 'i' }), 'ANSWER'), 1);
    assert.equal(score(rule('a.b', { fullMatch: true }), 'a\nb'), 0);
    assert.equal(score(rule('a.b', { fullMatch: true, flags: 's' }), 'a\nb'), 1);
    // Without u, "." is one UTF-16 unit, so one astral character is two of them.
    assert.equal(score(rule('^.$', { fullMatch: true }), '😀'), 0);
    assert.equal(score(rule('^.$', { fullMatch: true, flags: 'u' }), '😀'), 1);
  });
  test('the compiled rule gives the same answer when called repeatedly (no lastIndex state)', () => {
    const scorer = compileRegexRule(rule('\\d', { fullMatch: true }), ctxFor('regex'));
    assert.deepEqual([1, 2, 3].map(() => scorer(item('7'), 'items[0]')), [1, 1, 1]);
    const search = compileRegexRule(rule('\\d'), ctxFor('regex'));
    assert.deepEqual([1, 2, 3].map(() => search(item('7'), 'items[0]')), [1, 1, 1]);
  });
  test('empty completion', () => {
    assert.equal(score(rule('x'), ''), 0);
    assert.equal(score(rule('x', { negate: true }), ''), 1);
  });

  const errors: Array<[RegexRule, string]> = [
    [rule(''), 'components[0].regex.pattern: empty, expected a regular expression (an empty one matches every completion)'],
    [rule('a', { flags: 'g' }), 'components[0].regex.flags: got string "g": flag "g" is not allowed, expected a subset of "imsu"'],
    [rule('a', { flags: 'iy' }), 'components[0].regex.flags: got string "iy": flag "y" is not allowed, expected a subset of "imsu"'],
    [rule('a', { flags: 'imi' }), 'components[0].regex.flags: got string "imi": flag "i" repeated, expected each flag at most once'],
    [rule('a', { flags: 7 as unknown as string }), 'components[0].regex.flags: got 7, expected a string'],
    [rule('a', { negate: 1 as unknown as boolean }), 'components[0].regex.negate: got 1, expected true or false'],
  ];
  for (const [r, message] of errors) {
    test(`error: ${message}`, () => {
      assert.throws(() => compileRegexRule(r, ctxFor('regex')), (err: unknown) => err instanceof RewardValidationError && err.message === message);
    });
  }
  test('error: invalid regular expression, with the engine message', () => {
    assert.throws(
      () => compileRegexRule(rule('a(b'), ctxFor('regex')),
      (err: unknown) =>
        err instanceof RewardValidationError &&
        err.field === 'components[0].regex.pattern' &&
        /^components\[0\]\.regex\.pattern: invalid regular expression: .*a\(b.*Unterminated group$/.test(err.message),
    );
  });
  test('error: an unbalanced pattern that the full-match wrapper would have balanced', () => {
    assert.throws(() => compileRegexRule(rule('a)(b', { fullMatch: true }), ctxFor('regex')), /components\[0\]\.regex\.pattern: invalid regular expression/);
  });
  test('error: a pattern valid without u but not with it', () => {
    assert.equal(score(rule('\\-'), '-'), 1);
    assert.throws(() => compileRegexRule(rule('\\-', { flags: 'u' }), ctxFor('regex')), /components\[0\]\.regex\.pattern: invalid regular expression/);
  });
});
