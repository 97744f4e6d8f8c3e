import type { NumericMatchRule } from '@posttrain/proto';
import { compileExtraction } from './extract-answer';
import { parseNumber } from './parse-number';
import { RewardValidationError } from './reward-errors';
import { requireGroundTruth, requireNonNegative, type RuleContext, type RuleScorer } from './rule-scorer';

/**
 * numeric_match: 1 if the extracted answer a and the ground truth b parse as
 * numbers ({@link parseNumber}) with |a - b| <= abs_tolerance + rel_tolerance * |b|,
 * else 0. Both tolerances 0 means exact equality of the parsed values. An
 * answer that is missing or not a number scores 0; a ground truth that is not a
 * number is bad input (RewardValidationError on `items[i].ground_truth`).
 */
export function compileNumericMatch(rule: NumericMatchRule, ctx: RuleContext): RuleScorer {
  const extract = compileExtraction(rule.extraction, `${ctx.paramsPath}.extraction`);
  const absTolerance = requireNonNegative(rule.absTolerance ?? 0, `${ctx.paramsPath}.abs_tolerance`);
  const relTolerance = requireNonNegative(rule.relTolerance ?? 0, `${ctx.paramsPath}.rel_tolerance`);
  return (item, itemPath) => {
    const truthText = requireGroundTruth(item, itemPath, ctx);
    const truth = parseNumber(truthText);
    if (truth === null) {
      throw new RewardValidationError(
        `${itemPath}.ground_truth`,
        `got ${JSON.stringify(truthText)} (item id ${JSON.stringify(item.id)}), expected a number (integer, decimal, a/b or scientific) for ${ctx.describe}`,
      );
    }
    const answerText = extract(item.completion);
    const answer = answerText === null ? null : parseNumber(answerText);
    if (answer === null) return 0;
    return Math.abs(answer - truth) <= absTolerance + relTolerance * Math.abs(truth) ? 1 : 0;
  };
}
