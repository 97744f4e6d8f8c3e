/**
 * PPO clipped surrogate policy loss (Schulman et al. 2017, "Proximal Policy
 * Optimization Algorithms", eq. 7), per token, with
 * - asymmetric clipping: ratio clipped to [1 - clipLow, 1 + clipHigh] ("clip
 *   higher", Yu et al. 2025, DAPO, eq. 10); clipHigh defaults to clipLow;
 * - optional dual clip (Ye et al. 2020, "Mastering Complex Control in MOBA Games
 *   with Deep Reinforcement Learning", eq. 5): for A < 0 the loss is also capped
 *   at c |A| (c > 1), so a huge ratio on a bad action cannot blow up the update.
 *
 * In loss form (negated objective), with r = exp(logProbs - oldLogProbs):
 *   l1 = -A r,  l2 = -A clip(r, 1 - clipLow, 1 + clipHigh),  l = max(l1, l2)
 *   dual clip: l = min(l, -c A) where A < 0
 * reduced under the action mask with `aggregation` (see aggregateLoss).
 *
 * Diagnostics, as TRL's PPOTrainer / CleanRL:
 * - policy/clipfrac: share of valid tokens where the clipped term is the one
 *   used (l2 > l1), i.e. where clipping removed the gradient (TRL's definition;
 *   CleanRL's |r - 1| > eps also counts tokens where clipping is inactive);
 * - policy/approxkl: 0.5 mean (log r)^2 over valid tokens (the k2 estimator, as
 *   TRL; CleanRL also logs mean((r - 1) - log r)), which is 0 at r = 1;
 * - policy/dual_clipfrac: share of valid tokens where the dual clip bound is active.
 */
import * as tf from '@tensorflow/tfjs-core';
import { aggregateLoss, LOSS_AGGREGATIONS } from './aggregate-loss';
import type { LossAggregation } from './aggregate-loss';
import type { LossOutput } from './loss-output';
import { maskedMean } from './masked-reductions';
import { assertFloat, assertNumber, assertOneOf, assertRank, assertShape } from './shape-checks';
import { tidyLoss } from './tidy-loss';

export type PpoPolicyMetricName = 'loss/policy' | 'policy/clipfrac' | 'policy/approxkl' | 'policy/dual_clipfrac' | 'policy/ratio_mean';

export interface PpoPolicyLossArgs {
  /** [B,T] log-probs of the taken tokens under the policy being optimised. */
  readonly logProbs: tf.Tensor2D;
  /** [B,T] log-probs of the same tokens under the policy that sampled them. */
  readonly oldLogProbs: tf.Tensor2D;
  /** [B,T] per-token advantages, or [B] per-sequence advantages (broadcast over T, as GRPO). */
  readonly advantages: tf.Tensor;
  /** [B,T] 1 on response tokens, 0 on padding. */
  readonly actionMask: tf.Tensor2D;
  /** Lower clip epsilon, in [0, 1); default 0.2. */
  readonly clipLow?: number;
  /** Upper clip epsilon, >= 0; default clipLow. */
  readonly clipHigh?: number;
  /** Dual-clip constant c > 1; default none. */
  readonly dualClip?: number;
  /** Default 'token-mean'. */
  readonly aggregation?: LossAggregation;
  /** For 'seq-mean-token-sum-norm'; see aggregateLoss. */
  readonly constantNormaliser?: number;
}

export function ppoPolicyLoss(args: PpoPolicyLossArgs): LossOutput<PpoPolicyMetricName> {
  const fn = 'ppoPolicyLoss';
  const { logProbs, oldLogProbs, advantages, actionMask } = args;
  assertRank(fn, 'logProbs', logProbs, 2, '[B,T]');
  assertFloat(fn, 'logProbs', logProbs);
  assertShape(fn, 'oldLogProbs', oldLogProbs, logProbs.shape, 'logProbs');
  assertFloat(fn, 'oldLogProbs', oldLogProbs);
  assertShape(fn, 'actionMask', actionMask, logProbs.shape, 'logProbs');
  assertFloat(fn, 'advantages', advantages);
  if (advantages.rank === 1) assertShape(fn, 'advantages', advantages, [logProbs.shape[0]], 'logProbs[B]');
  else assertShape(fn, 'advantages', advantages, logProbs.shape, 'logProbs');
  const clipLow = args.clipLow ?? 0.2;
  assertNumber(fn, 'clipLow', clipLow, { min: 0, maxExclusive: 1 });
  const clipHigh = args.clipHigh ?? clipLow;
  assertNumber(fn, 'clipHigh', clipHigh, { min: 0 });
  if (args.dualClip !== undefined) assertNumber(fn, 'dualClip', args.dualClip, { minExclusive: 1 });
  const aggregation = args.aggregation ?? 'token-mean';
  assertOneOf(fn, 'aggregation', aggregation, LOSS_AGGREGATIONS);

  return tidyLoss<PpoPolicyMetricName>(() => {
    const adv = advantages.rank === 1 ? tf.expandDims(advantages, 1) : advantages; // (B,T) or (B,1)
    const logRatio = tf.sub(logProbs, oldLogProbs); // (B,T)
    const ratio = tf.exp(logRatio); // (B,T)
    const pgLosses1 = tf.mul(tf.neg(adv), ratio); // (B,T)
    const pgLosses2 = tf.mul(tf.neg(adv), tf.clipByValue(ratio, 1 - clipLow, 1 + clipHigh)); // (B,T)
    const clippedLosses = tf.maximum(pgLosses1, pgLosses2); // (B,T)
    let pgLosses = clippedLosses;
    let dualActive: tf.Tensor = tf.zerosLike(logRatio);
    if (args.dualClip !== undefined) {
      const pgLosses3 = tf.mul(tf.neg(adv), args.dualClip); // (B,T) or (B,1): c |A| where A < 0
      const negative = tf.broadcastTo(tf.less(adv, 0), logRatio.shape); // (B,T)
      const capped = tf.minimum(clippedLosses, pgLosses3);
      pgLosses = tf.where(negative, capped, clippedLosses);
      dualActive = tf.cast(tf.logicalAnd(negative, tf.greater(clippedLosses, pgLosses3)), 'float32');
    }
    const loss = aggregateLoss(pgLosses, actionMask, aggregation, { constantNormaliser: args.constantNormaliser });
    return {
      loss,
      metrics: {
        'loss/policy': loss,
        'policy/clipfrac': maskedMean(tf.cast(tf.greater(pgLosses2, pgLosses1), 'float32'), actionMask),
        'policy/approxkl': tf.mul(0.5, maskedMean(tf.mul(logRatio, logRatio), actionMask)),
        'policy/dual_clipfrac': maskedMean(dualActive, actionMask),
        'policy/ratio_mean': maskedMean(ratio, actionMask),
      },
    };
  });
}
