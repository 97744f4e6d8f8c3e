import type { ExactMatchRule } from '@posttrain/proto';
import { compileExtraction } from './extract-answer';
import { normalizeAnswer } from './normalize-answer';
import { RewardValidationError, showValue } from './reward-errors';
import { requireBoolean, requireGroundTruth, requireString, type RuleContext, type RuleScorer } from './rule-scorer';

/**
 * exact_match: 1 if the extracted answer equals the ground truth after both
 * are normalised ({@link normalizeAnswer}), else 0; no answer scores 0.
 * Extraction applies to the completion only; the ground truth is taken whole,
 * with its ends trimmed as every extracted answer is.
 */
export function compileExactMatch(rule: ExactMatchRule, ctx: RuleContext): RuleScorer {
  const extract = compileExtraction(rule.extraction, `${ctx.paramsPath}.extraction`);
  const n = rule.normalization;
  if (n !== undefined && (typeof n !== 'object' || n === null)) {
    throw new RewardValidationError(`${ctx.paramsPath}.normalization`, `got ${showValue(n)}, expected an object`);
  }
  const normalization = n && {
    caseInsensitive: requireBoolean(n.caseInsensitive, `${ctx.paramsPath}.normalization.case_insensitive`),
    collapseWhitespace: requireBoolean(n.collapseWhitespace, `${ctx.paramsPath}.normalization.collapse_whitespace`),
    stripChars: requireString(n.stripChars, `${ctx.paramsPath}.normalization.strip_chars`),
  };
  return (item, itemPath) => {
    const truth = normalizeAnswer(requireGroundTruth(item, itemPath, ctx).trim(), normalization);
    const answer = extract(item.completion);
    if (answer === null) return 0;
    return normalizeAnswer(answer, normalization) === truth ? 1 : 0;
  };
}
