/**
 * @posttrain/rewards: verifiable (rule-based) rewards for RL with verifiable
 * rewards (GRPO/PPO), as pure functions over the wire types of rewards.proto.
 * The reward service and the trainer both call {@link scoreItems}; run configs
 * and the CLI write components with {@link parseRewardSpec}.
 *
 * @example
 * ```ts
 * import { parseRewardSpec, scoreItems, RewardValidationError } from '@posttrain/rewards';
 *
 * const components = parseRewardSpec([
 *   { name: 'correct', weight: 1, rule: 'numeric_match', params: { abs_tolerance: 1e-6, extraction: { mode: 'last_number' } } },
 *   { name: 'format', weight: 0.1, rule: 'format', params: { answer_marker: 'Answer:' } },
 * ]);
 * const [score] = await scoreItems(
 *   [{ id: 'q1', prompt: '12+7=', promptMessages: [], completion: '12+7 is 19.\nAnswer: 19', groundTruth: '19', completionTokenIds: [] }],
 *   components,
 * );
 * // score.reward === 1.1; score.components: [{ name: 'correct', value: 1, weighted: 1 }, { name: 'format', value: 1, weighted: 0.1 }]
 * ```
 */

export { RewardBudgetError, RewardPreconditionError, RewardValidationError } from './reward-errors';
export { DEFAULT_REQUEST_LIMITS, repetitionNesting } from './request-limits';
export type { RequestLimits } from './request-limits';
export { SUPPORTED_RULES } from './supported-rules';
export type { RuleName } from './supported-rules';
export { validateRewardComponents } from './validate-reward-components';
export { parseRewardSpec } from './parse-reward-spec';
export type { RewardSpecEntry } from './parse-reward-spec';
export { DEFAULT_REGEX_TIME_LIMIT_MS, DEFAULT_SCORE_TIME_BUDGET_MS, scoreItems } from './score-items';
export type { RewardModelFn, ScoreOptions } from './score-items';
export { extractAnswer } from './extract-answer';
export { normalizeAnswer } from './normalize-answer';
export { canonicalDecimal, parseNumber } from './parse-number';
