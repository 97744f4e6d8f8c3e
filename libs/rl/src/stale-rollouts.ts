/**
 * Rollouts sampled by older weights than the trainer's current version.
 *
 * In the synchronous loop every replica acknowledges version n+1 before the
 * next rollouts, so staleness comes from a replica that missed a push (it was
 * down, or restarted from its start-up weights). Such a rollout is counted and
 * handled by the run's policy:
 * - 'drop': rollouts more than maxStaleness versions behind are discarded;
 *   those within it are used as they are.
 * - 'importance-correct': rollouts more than maxStaleness behind are
 *   discarded; stale ones within it are kept and each token's loss is weighted
 *   by the truncated importance ratio
 *     w_t = min(pi_current(a_t) / pi_behaviour(a_t), 1 + clipHigh)
 *   (IMPACT, Luo et al. 2020, eq. 3's truncated target-worker ratio; TIS,
 *   Yao et al. 2025), where pi_current is the trainer's policy when the batch
 *   is collected and pi_behaviour the sampler's log-probs. Since w_t >= 0,
 *   weighting the clipped PPO loss by w_t equals using w_t A_t as the advantage.
 *
 * With grouped rollouts (GRPO) a group is kept or dropped whole: its
 * advantages are relative to its members.
 */
import type { StaleRolloutPolicy } from '@posttrain/training';
import type { Rollout } from './rollout-types';

/** One of libs/training's STALE_ROLLOUT_POLICIES, the run config's stale_rollouts values. */
export type StalePolicy = StaleRolloutPolicy;

export interface StaleFilterResult {
  kept: Rollout[];
  /** Rollouts produced by a version older than the current one (kept or not). */
  stale: number;
  /** Rollouts discarded. */
  dropped: number;
}

/**
 * Filters rollouts by age. `groupSize` > 1 keeps or drops each run of
 * `groupSize` consecutive rollouts (one prompt's group) together.
 */
export function filterStaleRollouts(rollouts: readonly Rollout[], currentVersion: number, maxStaleness: number, groupSize = 1): StaleFilterResult {
  if (!Number.isInteger(maxStaleness) || maxStaleness < 0) throw new Error(`max_staleness: got ${maxStaleness}, expected an integer >= 0`);
  if (rollouts.length % groupSize !== 0) throw new Error(`filterStaleRollouts: ${rollouts.length} rollouts do not form groups of ${groupSize}`);
  const kept: Rollout[] = [];
  let stale = 0;
  let dropped = 0;
  for (let g = 0; g < rollouts.length; g += groupSize) {
    const group = rollouts.slice(g, g + groupSize);
    stale += group.filter((r) => r.weightsVersion < currentVersion).length;
    if (group.some((r) => currentVersion - r.weightsVersion > maxStaleness)) dropped += group.length;
    else kept.push(...group);
  }
  return { kept, stale, dropped };
}

/**
 * Per-token weights [B*T] (row-major, like the batch): 1 for tokens of fresh
 * rollouts and for masked positions; min(exp(current - behaviour), cap) for
 * tokens of stale rollouts under 'importance-correct'.
 */
export function importanceWeights(args: {
  currentLogProbs: Float32Array;
  behaviourLogProbs: Float32Array;
  actionMask: Float32Array;
  staleRows: readonly boolean[];
  time: number;
  cap: number;
}): Float32Array {
  const { currentLogProbs, behaviourLogProbs, actionMask, staleRows, time, cap } = args;
  if (!(cap >= 1)) throw new Error(`importanceWeights: cap ${cap} must be >= 1`);
  const out = new Float32Array(currentLogProbs.length).fill(1);
  staleRows.forEach((isStale, b) => {
    if (!isStale) return;
    for (let t = 0; t < time; t++) {
      const i = b * time + t;
      if (actionMask[i] === 1) out[i] = Math.min(Math.exp(currentLogProbs[i] - behaviourLogProbs[i]), cap);
    }
  });
  return out;
}
