import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalDecimal, parseNumber } from './parse-number';

describe('parseNumber', () => {
  // Expected values are the decimal literals themselves; each case is exact
  // (the parsed double equals the double of the literal), so no tolerance.
  const cases: Array<[string, number | null]> = [
    ['42', 42],
    ['  42  ', 42],
    ['-17', -17],
    ['+5', 5],
    ['3.25', 3.25],
    ['-0.5', -0.5],
    ['.5', 0.5],
    ['5.', 5],
    ['5.0', 5],
    ['1,234', 1234],
    ['1,234,567.89', 1234567.89],
    ['-1,000', -1000],
    ['1e3', 1000],
    ['2.5E-2', 0.025],
    ['-4e+1', -40],
    ['3/4', 0.75],
    ['-3/4', -0.75],
    ['3 / 4', 0.75],
    ['1.5/2', 0.75],
    ['\\frac{3}{4}', 0.75],
    ['-\\dfrac{1}{8}', -0.125],
    ['\\tfrac{10}{4}', 2.5],
  ];
  for (const [text, expected] of cases) {
    test(`${JSON.stringify(text)} -> ${expected}`, () => assert.equal(parseNumber(text), expected));
  }

  const notNumbers = ['', ' ', 'abc', '12abc', '1,23', '1,2345', '12,34,567', 'Infinity', '-Infinity', 'NaN', '0x10', '1e999', '3/0', '1/2/3', '--5', '+-5', '.', 'e5', '$5', '5%', '\\frac{a}{2}', '1 000'];
  for (const text of notNumbers) {
    test(`${JSON.stringify(text)} is not a number`, () => assert.equal(parseNumber(text), null));
  }
});

describe('canonicalDecimal', () => {
  const cases: Array<[string, string | null]> = [
    ['1000', '1000'],
    ['1,000', '1000'],
    ['+1,000.50', '1000.5'],
    ['5.0', '5'],
    ['5.', '5'],
    ['.5', '0.5'],
    ['007', '7'],
    ['-0.0', '0'],
    ['-0', '0'],
    ['-12.340', '-12.34'],
    // Beyond 2^53: digits kept as text, no rounding.
    ['12,345,678,901,234,567,890', '12345678901234567890'],
    [' 42 ', '42'],
    ['1e3', null],
    ['3/4', null],
    ['abc', null],
    ['', null],
    ['.', null],
    ['1,00', null],
  ];
  for (const [text, expected] of cases) {
    test(`${JSON.stringify(text)} -> ${JSON.stringify(expected)}`, () => assert.equal(canonicalDecimal(text), expected));
  }
});
