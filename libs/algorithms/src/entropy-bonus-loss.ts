/**
 * Entropy bonus as a loss term (Mnih et al. 2016, A3C, Sec. 4; Schulman et al.
 * 2017, PPO, eq. 9: L = L_clip - c_2 S[pi]): loss = -coefficient * agg(H_t),
 * with H from entropyFromLogits. Adding it to the policy loss rewards keeping
 * the token distribution spread out. `objective/entropy` is the mean entropy
 * over valid tokens (what TRL and CleanRL log), whatever the aggregation.
 */
import * as tf from '@tensorflow/tfjs-core';
import { aggregateLoss, LOSS_AGGREGATIONS } from './aggregate-loss';
import type { LossAggregation } from './aggregate-loss';
import type { LossOutput } from './loss-output';
import { maskedMean } from './masked-reductions';
import { assertFloat, assertNumber, assertOneOf, assertRank, assertShape } from './shape-checks';
import { tidyLoss } from './tidy-loss';

export type EntropyBonusMetricName = 'loss/entropy' | 'objective/entropy';

export interface EntropyBonusLossArgs {
  /** [B,T] per-token entropy (entropyFromLogits), computed from the policy's logits so it carries the gradient. */
  readonly entropy: tf.Tensor2D;
  /** [B,T] 1 on response tokens, 0 on padding. */
  readonly actionMask: tf.Tensor2D;
  /** Coefficient c >= 0 (CleanRL ent_coef default 0.01). */
  readonly coefficient: number;
  /** Default 'token-mean'; use the policy loss's mode. */
  readonly aggregation?: LossAggregation;
}

export function entropyBonusLoss(args: EntropyBonusLossArgs): LossOutput<EntropyBonusMetricName> {
  const fn = 'entropyBonusLoss';
  const { entropy, actionMask, coefficient } = args;
  assertRank(fn, 'entropy', entropy, 2, '[B,T]');
  assertFloat(fn, 'entropy', entropy);
  assertShape(fn, 'actionMask', actionMask, entropy.shape, 'entropy');
  assertNumber(fn, 'coefficient', coefficient, { min: 0 });
  const aggregation = args.aggregation ?? 'token-mean';
  assertOneOf(fn, 'aggregation', aggregation, LOSS_AGGREGATIONS);
  return tidyLoss<EntropyBonusMetricName>(() => {
    const loss = tf.mul(-coefficient, aggregateLoss(entropy, actionMask, aggregation)) as tf.Scalar;
    return { loss, metrics: { 'loss/entropy': loss, 'objective/entropy': maskedMean(entropy, actionMask) } };
  });
}
