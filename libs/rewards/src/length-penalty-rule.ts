import { LengthUnit, type LengthPenaltyRule } from '@posttrain/proto';
import { RewardValidationError, showValue } from './reward-errors';
import { requireNonNegative, type RuleContext, type RuleScorer } from './rule-scorer';

/**
 * length_penalty: -min(max_penalty, penalty_per_unit * max(0, length - target_length)),
 * with max_penalty 0 meaning no cap; never positive (0, not -0, when there is no
 * penalty). Length is in tokens (unset unit) from ScoreItem.completion_token_ids,
 * which must be sent for a non-empty completion (the rules have no tokenizer),
 * or in Unicode code points of the completion text.
 */
export function compileLengthPenalty(rule: LengthPenaltyRule, ctx: RuleContext): RuleScorer {
  const targetField = `${ctx.paramsPath}.target_length`;
  const target = rule.targetLength ?? 0;
  if (typeof target !== 'number' || !Number.isSafeInteger(target) || target < 0) {
    throw new RewardValidationError(targetField, `got ${showValue(target)}, expected an integer >= 0`);
  }
  const perUnit = requireNonNegative(rule.penaltyPerUnit ?? 0, `${ctx.paramsPath}.penalty_per_unit`);
  const maxPenalty = requireNonNegative(rule.maxPenalty ?? 0, `${ctx.paramsPath}.max_penalty`);
  const unit = rule.unit ?? LengthUnit.UNSPECIFIED;
  if (unit !== LengthUnit.UNSPECIFIED && unit !== LengthUnit.TOKENS && unit !== LengthUnit.CHARACTERS) {
    throw new RewardValidationError(`${ctx.paramsPath}.unit`, `got ${showValue(unit)}, expected LENGTH_UNIT_TOKENS or LENGTH_UNIT_CHARACTERS`);
  }
  const inCharacters = unit === LengthUnit.CHARACTERS;
  return (item, itemPath) => {
    let length: number;
    if (inCharacters) {
      length = Array.from(item.completion).length;
    } else {
      const ids = item.completionTokenIds ?? [];
      if (ids.length === 0 && item.completion !== '') {
        throw new RewardValidationError(
          `${itemPath}.completion_token_ids`,
          `empty for a non-empty completion (item id ${JSON.stringify(item.id)}), but ${ctx.describe} measures length in LENGTH_UNIT_TOKENS; send the token ids or use LENGTH_UNIT_CHARACTERS`,
        );
      }
      length = ids.length;
    }
    const raw = perUnit * Math.max(0, length - target);
    const penalty = maxPenalty > 0 ? Math.min(maxPenalty, raw) : raw;
    return penalty === 0 ? 0 : -penalty;
  };
}
