import type { RewardComponent } from '@posttrain/proto';

/**
 * The rule kinds of RewardComponent by their proto field names, in proto order;
 * what RewardScorer.GetInfo lists in `supported_rules` (a replica without a
 * reward model leaves out "reward_model").
 */
export const SUPPORTED_RULES = ['reward_model', 'exact_match', 'numeric_match', 'regex', 'format', 'length_penalty'] as const;

/** One of {@link SUPPORTED_RULES}. */
export type RuleName = (typeof SUPPORTED_RULES)[number];

type RuleCase = NonNullable<RewardComponent['rule']>['$case'];

/** The ts-proto oneof case of each rule name. */
export const RULE_CASES: Readonly<Record<RuleName, RuleCase>> = {
  reward_model: 'rewardModel',
  exact_match: 'exactMatch',
  numeric_match: 'numericMatch',
  regex: 'regex',
  format: 'format',
  length_penalty: 'lengthPenalty',
};

/** The proto field name of a ts-proto oneof case. */
export function ruleNameOf(ruleCase: RuleCase): RuleName {
  const found = SUPPORTED_RULES.find((name) => RULE_CASES[name] === ruleCase);
  if (found === undefined) throw new Error(`unknown rule case ${ruleCase}`);
  return found;
}
