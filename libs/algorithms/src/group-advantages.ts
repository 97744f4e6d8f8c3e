/**
 * Critic-free advantages from groups of samples per prompt.
 *
 * Input layout everywhere: rewards is flat [numPrompts * groupSize], prompt-major
 * (the groupSize samples of prompt 0 first, then prompt 1, ...), one scalar
 * reward per sampled sequence. The output has the same layout; broadcast it
 * over tokens by passing it as [B] advantages to ppoPolicyLoss.
 *
 * - GRPO (Shao et al. 2024, DeepSeekMath, Sec. 4.1.2, "outcome supervision"):
 *   A_i = (r_i - mean(group)) / (std(group) + eps), std with Bessel's
 *   correction as TRL (torch.std). A group whose rewards are all equal gets
 *   A = 0 (no signal), not NaN.
 * - Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training", eq. 3 /
 *   Sec. 3.2): A_i = r_i - mean(group), no std division (the std rescales
 *   easy and hard questions unequally). Pair with aggregation
 *   'seq-mean-token-sum-norm' for the full Dr. GRPO objective.
 * - RLOO (Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style
 *   Optimization for Learning from Human Feedback in LLMs", eq. 8; Kool et al.
 *   2019): A_i = r_i - (1 / (n - 1)) sum_{j != i} r_j.
 * - REINFORCE++-baseline (Hu 2025, "REINFORCE++"; OpenRLHF `reinforce_baseline`):
 *   each group's mean is subtracted, then the result is whitened over the batch,
 *   (x - mean) / sqrt(max(var, 1e-8)) with the population variance, as OpenRLHF.
 *   (Plain REINFORCE++ puts a per-token KL penalty in the returns and has no
 *   group baseline: computeGae with zero values and lambda = 1, then maskedWhiten.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { readScalars } from './tidy-loss';
import { assertFloat, assertNumber, assertRank } from './shape-checks';

export type GroupAdvantageMetricName = 'reward/mean' | 'reward/group_std' | 'reward/frac_zero_std';

/** Per-sequence advantages [numPrompts * groupSize] (caller owns them) and reward diagnostics. */
export interface GroupAdvantages {
  readonly advantages: tf.Tensor1D;
  /**
   * reward/mean: mean reward; reward/group_std: mean over groups of the
   * (Bessel) std within the group (0 for groups of one); reward/frac_zero_std:
   * share of groups whose rewards are all equal (TRL's frac_reward_zero_std).
   */
  readonly metrics: Readonly<Record<GroupAdvantageMetricName, number>>;
}

function checkGroups(fn: string, rewards: tf.Tensor1D, groupSize: number, minGroup: number): number {
  assertRank(fn, 'rewards', rewards, 1, '[numPrompts * groupSize]');
  assertFloat(fn, 'rewards', rewards);
  if (!Number.isInteger(groupSize) || groupSize < minGroup) {
    throw new Error(`${fn}: groupSize must be an integer >= ${minGroup}, got ${groupSize}`);
  }
  const total = rewards.shape[0];
  if (total % groupSize !== 0) {
    throw new Error(`${fn}: rewards length ${total} (shape [${rewards.shape.join(',')}]) is not divisible by groupSize ${groupSize}`);
  }
  return total / groupSize;
}

/** Builds advantages inside a tidy from the grouped rewards [P, n], with the shared diagnostics. */
function grouped(
  rewards: tf.Tensor1D,
  numPrompts: number,
  groupSize: number,
  compute: (groups: tf.Tensor2D, mean: tf.Tensor2D, std: tf.Tensor2D, allEqual: tf.Tensor2D) => tf.Tensor,
): GroupAdvantages {
  let metrics = {} as Record<GroupAdvantageMetricName, number>;
  const advantages = tf.tidy(() => {
    const groups = tf.reshape(rewards, [numPrompts, groupSize]) as tf.Tensor2D; // (P,n)
    const mean = tf.mean(groups, 1, true) as tf.Tensor2D; // (P,1)
    const centred = tf.sub(groups, mean); // (P,n)
    const sq = tf.sum(tf.mul(centred, centred), 1, true); // (P,1)
    const std = tf.sqrt(tf.div(sq, Math.max(groupSize - 1, 1))) as tf.Tensor2D; // (P,1) Bessel-corrected
    // A group is "all equal" when max == min (exact, unlike std == 0 after rounding).
    const allEqual = tf.equal(tf.max(groups, 1, true), tf.min(groups, 1, true)) as tf.Tensor2D; // (P,1) bool
    metrics = readScalars({
      'reward/mean': tf.mean(rewards),
      'reward/group_std': tf.mean(std),
      'reward/frac_zero_std': tf.mean(tf.cast(allEqual, 'float32')),
    });
    return tf.reshape(compute(groups, mean, std, allEqual), [numPrompts * groupSize]) as tf.Tensor1D;
  });
  return { advantages, metrics };
}

/** GRPO: (r - group mean) / (group std + eps); eps defaults to 1e-4 (TRL). groupSize >= 2. */
export function grpoAdvantages(rewards: tf.Tensor1D, groupSize: number, options: { eps?: number } = {}): GroupAdvantages {
  const fn = 'grpoAdvantages';
  const numPrompts = checkGroups(fn, rewards, groupSize, 2);
  const eps = options.eps ?? 1e-4;
  assertNumber(fn, 'options.eps', eps, { minExclusive: 0 });
  return grouped(rewards, numPrompts, groupSize, (groups, mean, std, allEqual) =>
    // An all-equal group has r - mean = 0 in exact arithmetic, but the float mean
    // of e.g. three 0.7s is not exactly 0.7, and (1e-8)/(1e-8 + eps) is not 0:
    // such groups are set to exactly 0, which is what the formula means.
    tf.where(tf.broadcastTo(allEqual, groups.shape), tf.zerosLike(groups), tf.div(tf.sub(groups, mean), tf.add(std, eps))),
  );
}

/** Dr. GRPO: r - group mean (no std normalisation). groupSize >= 1. */
export function drGrpoAdvantages(rewards: tf.Tensor1D, groupSize: number): GroupAdvantages {
  const numPrompts = checkGroups('drGrpoAdvantages', rewards, groupSize, 1);
  return grouped(rewards, numPrompts, groupSize, (groups, mean) => tf.sub(groups, mean));
}

/** RLOO: r_i minus the mean of the other n - 1 rewards of its group. groupSize >= 2. */
export function rlooAdvantages(rewards: tf.Tensor1D, groupSize: number): GroupAdvantages {
  const numPrompts = checkGroups('rlooAdvantages', rewards, groupSize, 2);
  return grouped(rewards, numPrompts, groupSize, (groups) => {
    const others = tf.sub(tf.sum(groups, 1, true), groups); // (P,n) sum_{j != i} r_j
    return tf.sub(groups, tf.div(others, groupSize - 1));
  });
}

function whitenBatch(x: tf.Tensor): tf.Tensor {
  const mean = tf.mean(x);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.mul(centred, centred)); // population variance, as OpenRLHF
  return tf.mul(centred, tf.rsqrt(tf.maximum(variance, 1e-8)));
}

/** REINFORCE++-baseline: subtract each group's mean, then whiten over the whole batch. */
export function reinforcePlusPlusBaselineAdvantages(rewards: tf.Tensor1D, groupSize: number): GroupAdvantages {
  const numPrompts = checkGroups('reinforcePlusPlusBaselineAdvantages', rewards, groupSize, 1);
  return grouped(rewards, numPrompts, groupSize, (groups, mean) => whitenBatch(tf.sub(groups, mean)));
}
