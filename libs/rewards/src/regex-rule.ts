import type { RegexRule } from '@posttrain/proto';
import { compileRegex } from './extract-answer';
import { RewardValidationError, showValue } from './reward-errors';
import { requireBoolean, requireString, type RuleContext, type RuleScorer } from './rule-scorer';

const ALLOWED_FLAGS = 'imsu';

/**
 * regex: 1 if the completion matches, else 0 (the other way round with
 * `negate`). `full_match` requires the whole completion to match; it is
 * anchored at both ends of the text whatever the flags (with `m`, `^`/`$`
 * inside the pattern still mean line boundaries), and backtracking tries every
 * alternative, so `a|ab` full-matches "ab". Flags are a subset of "imsu", each
 * at most once; `g` and `y` are refused because they make matching stateful.
 */
export function compileRegexRule(rule: RegexRule, ctx: RuleContext): RuleScorer {
  const pattern = requireString(rule.pattern, `${ctx.paramsPath}.pattern`);
  const flags = requireString(rule.flags, `${ctx.paramsPath}.flags`);
  const fullMatch = requireBoolean(rule.fullMatch, `${ctx.paramsPath}.full_match`);
  const negate = requireBoolean(rule.negate, `${ctx.paramsPath}.negate`);
  if (pattern === '') {
    throw new RewardValidationError(`${ctx.paramsPath}.pattern`, 'empty, expected a regular expression (an empty one matches every completion)');
  }
  for (const [i, flag] of Array.from(flags).entries()) {
    if (!ALLOWED_FLAGS.includes(flag)) {
      throw new RewardValidationError(`${ctx.paramsPath}.flags`, `got ${showValue(flags)}: flag "${flag}" is not allowed, expected a subset of "${ALLOWED_FLAGS}"`);
    }
    if (flags.indexOf(flag) !== i) {
      throw new RewardValidationError(`${ctx.paramsPath}.flags`, `got ${showValue(flags)}: flag "${flag}" repeated, expected each flag at most once`);
    }
  }
  // Compile the pattern as given first, so that a syntax error is reported on it and
  // an unbalanced pattern such as "a)(b" cannot become valid inside the wrapper below.
  const search = compileRegex(pattern, flags, `${ctx.paramsPath}.pattern`);
  const whole = compileRegex(`(?:${pattern})(?![\\s\\S])`, `${flags}y`, `${ctx.paramsPath}.pattern`);
  const matches = (text: string): boolean => {
    if (!fullMatch) return search.test(text);
    whole.lastIndex = 0;
    return whole.test(text);
  };
  return (item) => (matches(item.completion) !== negate ? 1 : 0);
}
