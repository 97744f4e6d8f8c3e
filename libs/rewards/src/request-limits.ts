import { ExtractionMode, type RewardComponent } from '@posttrain/proto';
import { RewardValidationError } from './reward-errors';

/**
 * Bounds on one Score request, checked before anything is compiled or run.
 * A request's regular expressions run on the service's only thread: a long
 * or deeply nested pattern, or a hundred patterns each just under the
 * per-component time limit, would hold it (and every other caller, and the
 * health check) for a minute. Error messages give sizes, never the pattern.
 */
export interface RequestLimits {
  /** Most components per request. */
  readonly maxComponents: number;
  /** Longest pattern (UTF-16 code units). */
  readonly maxPatternChars: number;
  /**
   * Most repetition operators nested inside one another (star height):
   * 1 allows `\d+` and `(ab)+` but not `(a+)+`, the shape of catastrophic
   * backtracking.
   */
  readonly maxRepetitionNesting: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = { maxComponents: 32, maxPatternChars: 1000, maxRepetitionNesting: 1 };

/**
 * Star height of a JavaScript pattern: how deeply operators that repeat
 * (`*`, `+`, `{n,}`, `{n,m}` with m > 1) nest. Escapes, character classes
 * and `?` (at most once) do not count; lookarounds and groups are scanned
 * like any group.
 */
export function repetitionNesting(pattern: string): number {
  // Per open group: the deepest repetition nesting seen inside it so far.
  const stack: number[] = [0];
  let last = 0; // nesting of the atom just before the current position (a quantifier applies to it)
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '\\') {
      i++; // an escaped character is a plain atom
      last = 0;
      continue;
    }
    if (ch === '[') {
      // A character class is one atom; skip to its closing bracket (escapes included).
      for (i++; i < pattern.length && pattern[i] !== ']'; i++) if (pattern[i] === '\\') i++;
      last = 0;
      continue;
    }
    if (ch === '(') {
      stack.push(0);
      last = 0;
      continue;
    }
    if (ch === ')') {
      const inner = stack.length > 1 ? stack.pop()! : 0;
      stack[stack.length - 1] = Math.max(stack[stack.length - 1], inner); // a group nests as deep as its content
      last = inner;
      continue;
    }
    let repeats = false;
    let length = 1;
    if (ch === '*' || ch === '+') repeats = true;
    else if (ch === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i, i + 40));
      if (!m) {
        last = 0; // a literal brace
        continue;
      }
      repeats = m[2] !== undefined && (m[3] === '' || Number(m[3]) > 1);
      length = m[0].length;
      if (!repeats) {
        i += length - 1; // {n} or {n,1}: not a repetition of unbounded choice
        continue;
      }
    }
    if (repeats) {
      const depth = last + 1;
      stack[stack.length - 1] = Math.max(stack[stack.length - 1], depth);
      last = depth;
      i += length - 1;
      if (pattern[i + 1] === '?' || pattern[i + 1] === '+') i++; // lazy / possessive-looking suffix
      continue;
    }
    if (ch === '?') continue; // at most once: no repetition
    last = 0;
  }
  return Math.max(...stack);
}

/** The patterns of a component that scoring would run, with their field paths. */
function patternsOf(component: RewardComponent, at: string): { field: string; pattern: string }[] {
  const rule = component?.rule;
  if (!rule || typeof rule.value !== 'object' || rule.value === null) return [];
  if (rule.$case === 'regex') return typeof rule.value.pattern === 'string' ? [{ field: `${at}.regex.pattern`, pattern: rule.value.pattern }] : [];
  if (rule.$case === 'exactMatch' || rule.$case === 'numericMatch') {
    const e = rule.value.extraction;
    const name = rule.$case === 'exactMatch' ? 'exact_match' : 'numeric_match';
    if (e?.mode === ExtractionMode.REGEX && typeof e.pattern === 'string') return [{ field: `${at}.${name}.extraction.pattern`, pattern: e.pattern }];
  }
  return [];
}

/** Refuses a request over the limits with a RewardValidationError naming the field (INVALID_ARGUMENT). */
export function checkRequestLimits(components: readonly RewardComponent[], limits: RequestLimits, fieldPrefix = 'components'): void {
  if (!Array.isArray(components)) return; // compileRewardComponents reports it
  if (components.length > limits.maxComponents) {
    throw new RewardValidationError(fieldPrefix, `got ${components.length} components, expected at most ${limits.maxComponents}`);
  }
  components.forEach((c, i) => {
    for (const { field, pattern } of patternsOf(c, `${fieldPrefix}[${i}]`)) {
      if (pattern.length > limits.maxPatternChars) {
        throw new RewardValidationError(field, `got a pattern of ${pattern.length} characters, expected at most ${limits.maxPatternChars}`);
      }
      const nesting = repetitionNesting(pattern);
      if (nesting > limits.maxRepetitionNesting) {
        throw new RewardValidationError(
          field,
          `repetition operators nested ${nesting} deep (such as (a+)+), expected at most ${limits.maxRepetitionNesting}: nested repetition can backtrack exponentially; rewrite it without the outer repetition`,
        );
      }
    }
  });
}
