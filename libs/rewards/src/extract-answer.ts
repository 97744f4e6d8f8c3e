import { ExtractionMode, type AnswerExtraction } from '@posttrain/proto';
import { RewardValidationError, showValue } from './reward-errors';

/** Takes the answer out of a completion; null means "no answer" (the rule scores 0). */
export type AnswerExtractor = (text: string) => string | null;

const KNOWN_MODES: ReadonlySet<unknown> = new Set([
  ExtractionMode.UNSPECIFIED,
  ExtractionMode.WHOLE,
  ExtractionMode.AFTER_MARKER,
  ExtractionMode.REGEX,
  ExtractionMode.BOXED,
  ExtractionMode.LAST_NUMBER,
]);
const MODE_NAMES = 'EXTRACTION_MODE_WHOLE, EXTRACTION_MODE_AFTER_MARKER, EXTRACTION_MODE_REGEX, EXTRACTION_MODE_BOXED, EXTRACTION_MODE_LAST_NUMBER';

/**
 * A number as LAST_NUMBER sees it: optional sign, digits (commas only as valid
 * thousands groups), optional fraction, optional exponent. It may not start in
 * the middle of a number (after a digit or a point), so in `10-3` the sign of
 * `-3` is read as an operator and `3` is the number.
 */
const NUMBER_IN_TEXT = /(?<![\d.])[+-]?(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?/g;

/** The answer is absent when nothing but whitespace was extracted. */
function nonEmpty(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  const t = text.trim();
  return t === '' ? null : t;
}

function afterMarker(text: string, marker: string): string | null {
  const at = text.lastIndexOf(marker);
  if (at < 0) return null;
  const rest = text.slice(at + marker.length);
  const eol = rest.search(/\r?\n/);
  return nonEmpty(eol < 0 ? rest : rest.slice(0, eol));
}

function lastRegexMatch(text: string, regex: RegExp): string | null {
  let last: RegExpExecArray | null = null;
  for (const m of text.matchAll(regex)) last = m;
  if (last === null) return null;
  // With capture groups the answer is group 1; a group that did not take part in the match is no answer.
  return nonEmpty(last.length > 1 ? last[1] : last[0]);
}

/**
 * Content of the last complete `\boxed{...}` (or `\fbox{...}`), with nested
 * braces balanced and escaped braces (`\{`, `\}`) not counted. "Last" is by
 * start position, so `\boxed{\boxed{3}}` gives `3`; an unclosed `\boxed{` (a
 * truncated completion) is skipped in favour of the last complete one.
 */
export function lastBoxed(text: string): string | null {
  const opener = /\\(?:boxed|fbox)\s*\{/g;
  let found: string | null = null;
  for (const m of text.matchAll(opener)) {
    const start = m.index + m[0].length;
    let depth = 1;
    let i = start;
    for (; i < text.length && depth > 0; i++) {
      const ch = text[i];
      if (ch === '\\') i++; // skip the escaped character
      else if (ch === '{') depth++;
      else if (ch === '}') depth--;
    }
    if (depth === 0) found = text.slice(start, i - 1);
  }
  return nonEmpty(found);
}

/** The last number in the text with thousands commas dropped (`1,234.5` -> `1234.5`). */
export function lastNumber(text: string): string | null {
  let last: string | null = null;
  for (const m of text.matchAll(NUMBER_IN_TEXT)) last = m[0];
  return last === null ? null : last.replace(/,/g, '');
}

/**
 * Validates an extraction and returns the function that applies it. Unset
 * extraction or mode means WHOLE. `pattern` is required by AFTER_MARKER (a
 * literal marker) and REGEX (a JavaScript regular expression, compiled with the
 * `g` flag only), and rejected by the other modes, where it would be silently
 * ignored. Every mode trims the extracted answer; an empty one is no answer.
 */
export function compileExtraction(extraction: AnswerExtraction | undefined, path: string): AnswerExtractor {
  const mode = extraction?.mode ?? ExtractionMode.UNSPECIFIED;
  const pattern = extraction?.pattern ?? '';
  if (typeof pattern !== 'string') {
    throw new RewardValidationError(`${path}.pattern`, `got ${showValue(pattern)}, expected a string`);
  }
  const needsPattern = mode === ExtractionMode.AFTER_MARKER || mode === ExtractionMode.REGEX;
  if (!KNOWN_MODES.has(mode)) throw new RewardValidationError(`${path}.mode`, `got ${showValue(mode)}, expected one of ${MODE_NAMES}`);
  if (!needsPattern && pattern !== '') {
    throw new RewardValidationError(
      `${path}.pattern`,
      `got ${showValue(pattern)}, but only EXTRACTION_MODE_AFTER_MARKER and EXTRACTION_MODE_REGEX use a pattern; set the mode or remove the pattern`,
    );
  }
  if (needsPattern && pattern === '') {
    const what = mode === ExtractionMode.REGEX ? 'a regular expression' : 'a marker such as "Answer:"';
    throw new RewardValidationError(`${path}.pattern`, `empty, expected ${what} for ${modeName(mode)}`);
  }
  switch (mode) {
    case ExtractionMode.UNSPECIFIED:
    case ExtractionMode.WHOLE:
      return nonEmpty;
    case ExtractionMode.AFTER_MARKER:
      return (text) => afterMarker(text, pattern);
    case ExtractionMode.REGEX: {
      const regex = compileRegex(pattern, 'g', `${path}.pattern`);
      return (text) => lastRegexMatch(text, regex);
    }
    case ExtractionMode.BOXED:
      return lastBoxed;
    case ExtractionMode.LAST_NUMBER:
      return lastNumber;
    default:
      throw new RewardValidationError(`${path}.mode`, `got ${showValue(mode)}, expected one of ${MODE_NAMES}`);
  }
}

function modeName(mode: ExtractionMode): string {
  return `EXTRACTION_MODE_${ExtractionMode[mode]}`;
}

/** Compiles a JavaScript regular expression, reporting a syntax error against `field`. */
export function compileRegex(pattern: string, flags: string, field: string): RegExp {
  try {
    return new RegExp(pattern, flags);
  } catch (err) {
    // V8's message quotes the whole pattern: keep a short one, elide a long one.
    const raw = err instanceof Error ? err.message : String(err);
    const why = pattern.length > 80 ? raw.split(pattern).join(`${pattern.slice(0, 40)}...(${pattern.length} characters)`) : raw;
    throw new RewardValidationError(field, `invalid regular expression: ${why.slice(0, 300)}`);
  }
}

/** Applies an extraction once (validating it first); for one-off use and tests. */
export function extractAnswer(text: string, extraction?: AnswerExtraction): string | null {
  return compileExtraction(extraction, 'extraction')(text);
}
