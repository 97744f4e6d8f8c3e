import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ExtractionMode } from '@posttrain/proto';
import { compileExtraction, extractAnswer, lastBoxed, lastNumber } from './extract-answer';
import { RewardValidationError } from './reward-errors';

const mode = (m: ExtractionMode, pattern = '') => ({ mode: m, pattern });

describe('extractAnswer: WHOLE (and unset)', () => {
  test('the whole completion, trimmed', () => {
    assert.equal(extractAnswer('  42 \n'), '42');
    assert.equal(extractAnswer('a\nb', mode(ExtractionMode.WHOLE)), 'a\nb');
    assert.equal(extractAnswer('x', mode(ExtractionMode.UNSPECIFIED)), 'x');
  });
  test('an empty or blank completion is no answer', () => {
    assert.equal(extractAnswer(''), null);
    assert.equal(extractAnswer(' \n\t'), null);
  });
});

describe('extractAnswer: AFTER_MARKER', () => {
  const m = mode(ExtractionMode.AFTER_MARKER, 'Answer:');
  test('text after the marker up to the end of the line, trimmed', () => {
    assert.equal(extractAnswer('Work...\nAnswer: 42\nThanks', m), '42');
    assert.equal(extractAnswer('Answer:   17  ', m), '17');
    assert.equal(extractAnswer('Answer: 5\r\nmore', m), '5');
  });
  test('the last occurrence of the marker wins', () => {
    assert.equal(extractAnswer('Answer: 1\nno wait\nAnswer: 2', m), '2');
  });
  test('GSM8K "####" marker', () => {
    assert.equal(extractAnswer('3+4=7 #### 7', mode(ExtractionMode.AFTER_MARKER, '####')), '7');
  });
  test('marker missing, or nothing after it on its line, is no answer', () => {
    assert.equal(extractAnswer('The answer is 42', m), null);
    assert.equal(extractAnswer('Answer:\n42', m), null);
    assert.equal(extractAnswer('Answer:   ', m), null);
    assert.equal(extractAnswer('', m), null);
  });
  test('the marker is literal, not a regular expression', () => {
    assert.equal(extractAnswer('a.b 1 a?b 2', mode(ExtractionMode.AFTER_MARKER, 'a.b')), '1 a?b 2');
    assert.equal(extractAnswer('axb 1', mode(ExtractionMode.AFTER_MARKER, 'a.b')), null);
  });
});

describe('extractAnswer: REGEX', () => {
  test('first capture group of the last match', () => {
    const m = mode(ExtractionMode.REGEX, String.raw`answer is (\d+)`);
    assert.equal(extractAnswer('the answer is 3, no, the answer is 4.', m), '4');
  });
  test('the whole match when the pattern has no group', () => {
    assert.equal(extractAnswer('x=1 y=22 z', mode(ExtractionMode.REGEX, String.raw`\d+`)), '22');
  });
  test('a named group counts as the first group', () => {
    assert.equal(extractAnswer('final: 9', mode(ExtractionMode.REGEX, String.raw`final: (?<a>\d)`)), '9');
  });
  test('no match, or a first group that did not take part, is no answer', () => {
    assert.equal(extractAnswer('nothing here', mode(ExtractionMode.REGEX, String.raw`(\d+)`)), null);
    assert.equal(extractAnswer('B7', mode(ExtractionMode.REGEX, String.raw`A(\d)|B(\d)`)), null);
  });
  test('patterns that can match empty strings terminate', () => {
    assert.equal(extractAnswer('abc', mode(ExtractionMode.REGEX, 'x*')), null);
  });
});

describe('extractAnswer: BOXED', () => {
  const m = mode(ExtractionMode.BOXED);
  test('content of the last \\boxed{...}', () => {
    assert.equal(extractAnswer('so \\boxed{3} or rather \\boxed{4}.', m), '4');
  });
  test('nested braces are balanced', () => {
    assert.equal(extractAnswer('$\\boxed{\\frac{1}{2}}$', m), '\\frac{1}{2}');
    assert.equal(extractAnswer('\\boxed{{a}{b{c}}}', m), '{a}{b{c}}');
  });
  test('escaped braces do not count', () => {
    assert.equal(extractAnswer('\\boxed{\\{1, 2\\}}', m), '\\{1, 2\\}');
  });
  test('\\fbox and a space before the brace are accepted', () => {
    assert.equal(extractAnswer('\\fbox{7}', m), '7');
    assert.equal(extractAnswer('\\boxed {8}', m), '8');
  });
  test('boxed inside boxed: the one starting last', () => {
    assert.equal(lastBoxed('\\boxed{x + \\boxed{3}}'), '3');
  });
  test('an unclosed trailing \\boxed{ falls back to the last complete one', () => {
    assert.equal(extractAnswer('\\boxed{5} then \\boxed{6', m), '5');
    assert.equal(extractAnswer('\\boxed{6', m), null);
  });
  test('none, or empty, is no answer', () => {
    assert.equal(extractAnswer('42', m), null);
    assert.equal(extractAnswer('\\boxed{ }', m), null);
    assert.equal(extractAnswer('\\boxedx{3}', m), null);
  });
});

describe('extractAnswer: LAST_NUMBER', () => {
  const cases: Array<[string, string | null]> = [
    ['There are 3 apples and 12 pears.', '12'],
    ['The result is -7.', '-7'],
    ['x = -3.5e2 units', '-3.5e2'],
    ['It costs 1,234,567 dollars', '1234567'],
    ['total 1,234.50', '1234.50'],
    ['list 1,2,3', '3'],
    ['1,2345', '2345'],
    ['10-3', '3'], // minus between digits is an operator, not a sign
    ['range 5 to -2', '-2'],
    ['+4', '+4'],
    ['.5 of it', '.5'],
    ['the answer is 42.', '42'], // the full stop is not a decimal point
    ['version 1.5.3', '1.5'],
    ['no digits at all', null],
    ['', null],
  ];
  for (const [text, expected] of cases) {
    test(`${JSON.stringify(text)} -> ${JSON.stringify(expected)}`, () => {
      assert.equal(lastNumber(text), expected);
      assert.equal(extractAnswer(text, mode(ExtractionMode.LAST_NUMBER)), expected);
    });
  }
});

describe('compileExtraction validation', () => {
  const fails = (extraction: Parameters<typeof compileExtraction>[0], message: string) =>
    assert.throws(() => compileExtraction(extraction, 'components[0].exact_match.extraction'), (err: unknown) => {
      assert.ok(err instanceof RewardValidationError);
      assert.equal(err.message, message);
      return true;
    });
  test('unknown mode', () => {
    fails(
      { mode: 9 as ExtractionMode, pattern: '' },
      'components[0].exact_match.extraction.mode: got 9, expected one of EXTRACTION_MODE_WHOLE, EXTRACTION_MODE_AFTER_MARKER, EXTRACTION_MODE_REGEX, EXTRACTION_MODE_BOXED, EXTRACTION_MODE_LAST_NUMBER',
    );
    fails(
      { mode: ExtractionMode.UNRECOGNIZED, pattern: '' },
      'components[0].exact_match.extraction.mode: got -1, expected one of EXTRACTION_MODE_WHOLE, EXTRACTION_MODE_AFTER_MARKER, EXTRACTION_MODE_REGEX, EXTRACTION_MODE_BOXED, EXTRACTION_MODE_LAST_NUMBER',
    );
  });
  test('a mode given by name instead of its number', () => {
    assert.throws(() => compileExtraction({ mode: 'WHOLE' as unknown as ExtractionMode, pattern: '' }, 'e'), /^RewardValidationError: e\.mode: got string "WHOLE", expected one of/);
  });
  test('AFTER_MARKER and REGEX need a pattern', () => {
    fails(mode(ExtractionMode.AFTER_MARKER), 'components[0].exact_match.extraction.pattern: empty, expected a marker such as "Answer:" for EXTRACTION_MODE_AFTER_MARKER');
    fails(mode(ExtractionMode.REGEX), 'components[0].exact_match.extraction.pattern: empty, expected a regular expression for EXTRACTION_MODE_REGEX');
  });
  test('a pattern with a mode that ignores it', () => {
    fails(
      mode(ExtractionMode.UNSPECIFIED, 'Answer:'),
      'components[0].exact_match.extraction.pattern: got string "Answer:", but only EXTRACTION_MODE_AFTER_MARKER and EXTRACTION_MODE_REGEX use a pattern; set the mode or remove the pattern',
    );
  });
  test('an invalid regular expression', () => {
    assert.throws(
      () => compileExtraction(mode(ExtractionMode.REGEX, '(\\d+'), 'components[0].exact_match.extraction'),
      /^RewardValidationError: components\[0\]\.exact_match\.extraction\.pattern: invalid regular expression: .*Unterminated group/,
    );
  });
});
