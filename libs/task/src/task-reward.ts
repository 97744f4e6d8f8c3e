import type { RewardComponent } from '@posttrain/proto';
import { parseRewardSpec, type RewardSpecEntry } from '@posttrain/rewards';
import { ANSWER_MARKER } from './solve-problem';

/** Name of the correctness component of {@link TASK_REWARD_SPEC}. */
export const CORRECT_COMPONENT = 'correct';
/** Name of the format component of {@link TASK_REWARD_SPEC}. */
export const FORMAT_COMPONENT = 'format';

/**
 * The task's verifiable reward, as a libs/rewards spec (what a run config's
 * `rewards:` list holds):
 * - `correct` (weight 1): the number after the last "Answer:" equals the
 *   ground truth exactly (integers, so no tolerance). A reply without the
 *   marker scores 0 even if the right number appears somewhere else: the
 *   task asks for the answer line.
 * - `format` (weight 0.1): the last non-empty line starts with "Answer:" and
 *   has something after it. Small, so it shapes the early policy without
 *   outweighing correctness.
 */
export const TASK_REWARD_SPEC: readonly RewardSpecEntry[] = [
  { name: CORRECT_COMPONENT, weight: 1, rule: 'numeric_match', params: { abs_tolerance: 0, extraction: { mode: 'after_marker', pattern: ANSWER_MARKER } } },
  { name: FORMAT_COMPONENT, weight: 0.1, rule: 'format', params: { answer_marker: ANSWER_MARKER } },
];

/** {@link TASK_REWARD_SPEC} parsed into wire components, for scoreItems or a ScoreRequest. */
export function taskRewardComponents(): RewardComponent[] {
  // A deep copy, so a caller mutating its components cannot change the spec.
  return parseRewardSpec(JSON.parse(JSON.stringify(TASK_REWARD_SPEC)), 'task reward');
}

/**
 * The result of the first worked sentence of a plain-text continuation: the
 * number after "so the sum/difference/product is", with no full stop before
 * it (worked steps have none), so a second sentence the model rambles on
 * into is never read.
 */
export const PROSE_ANSWER_PATTERN = '^[^.]*?so the (?:sum|difference|product) is (\\d+)';

/**
 * Plain-text competence of a base model, as a libs/rewards spec: `correct`
 * (weight 1) when the first worked sentence of the continuation of a prose
 * prompt ("To add 45 and 13:") ends in the right number.
 */
export const PROSE_REWARD_SPEC: readonly RewardSpecEntry[] = [
  { name: CORRECT_COMPONENT, weight: 1, rule: 'numeric_match', params: { abs_tolerance: 0, extraction: { mode: 'regex', pattern: PROSE_ANSWER_PATTERN } } },
];

/** {@link PROSE_REWARD_SPEC} parsed into wire components. */
export function proseRewardComponents(): RewardComponent[] {
  return parseRewardSpec(JSON.parse(JSON.stringify(PROSE_REWARD_SPEC)), 'prose reward');
}
