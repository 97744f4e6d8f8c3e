import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeAnswer } from './normalize-answer';

const none = { caseInsensitive: false, collapseWhitespace: false, stripChars: '' };

describe('normalizeAnswer', () => {
  test('without normalisation, text is kept as is (case and inner spacing matter)', () => {
    assert.equal(normalizeAnswer('Paris  France'), 'Paris  France');
    assert.equal(normalizeAnswer(' Paris', none), ' Paris');
  });
  test('case_insensitive lower-cases', () => {
    assert.equal(normalizeAnswer('PaRiS', { ...none, caseInsensitive: true }), 'paris');
  });
  test('collapse_whitespace trims and collapses runs (tabs, newlines) to one space', () => {
    assert.equal(normalizeAnswer('  New \t\n York  ', { ...none, collapseWhitespace: true }), 'New York');
  });
  test('strip_chars removes every listed character, then whitespace is collapsed', () => {
    // "$1,000." minus "$,." -> "1000"; "a - b" minus "-" -> "a  b" -> collapsed "a b".
    assert.equal(normalizeAnswer('$1,000.', { ...none, stripChars: '$,.' }), '1000');
    assert.equal(normalizeAnswer('a - b', { ...none, stripChars: '-', collapseWhitespace: true }), 'a b');
  });
  test('strip_chars works by code point (astral characters)', () => {
    assert.equal(normalizeAnswer('😀42😀', { ...none, stripChars: '😀' }), '42');
  });
  test('numbers are always canonical: thousands commas, leading +, trailing .0', () => {
    assert.equal(normalizeAnswer('1,000'), '1000');
    assert.equal(normalizeAnswer('+5'), '5');
    assert.equal(normalizeAnswer('5.0'), '5');
    assert.equal(normalizeAnswer(' 2.50 '), '2.5');
    assert.equal(normalizeAnswer('-0'), '0');
  });
  test('non-numbers are not touched by the number step', () => {
    assert.equal(normalizeAnswer('1,000 apples'), '1,000 apples');
    assert.equal(normalizeAnswer('3/4'), '3/4');
  });
});
