/**
 * How a per-token loss matrix becomes one number. The choice matters for RL on
 * variable-length responses (Liu et al. 2025, "Understanding R1-Zero-Like
 * Training: A Critical Perspective" (Dr. GRPO), Sec. 3.1 and eq. 3): averaging
 * per sequence first weights each token of a short answer more than a token of
 * a long one. Mode names follow verl's `loss_agg_mode`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { maskedMean, maskedSum } from './masked-reductions';
import { assertFloat, assertNumber, assertOneOf, assertRank, assertShape } from './shape-checks';

export type LossAggregation = 'token-mean' | 'seq-mean-token-sum' | 'seq-mean-token-mean' | 'seq-mean-token-sum-norm';

export const LOSS_AGGREGATIONS: readonly LossAggregation[] = [
  'token-mean',
  'seq-mean-token-sum',
  'seq-mean-token-mean',
  'seq-mean-token-sum-norm',
];

export interface AggregateLossOptions {
  /**
   * For 'seq-mean-token-sum-norm' only: the constant C that replaces each
   * sequence's length (Dr. GRPO uses the generation budget, max_new_tokens).
   * Defaults to T, the padded length.
   */
  readonly constantNormaliser?: number;
}

/**
 * Reduces lossPerToken [B,T] under mask [B,T] to a scalar:
 * - 'token-mean':              sum_{i,t} m L / sum_{i,t} m (every valid token weighs the same; DAPO)
 * - 'seq-mean-token-sum':      mean_i sum_t m L
 * - 'seq-mean-token-mean':     mean_i (sum_t m L / sum_t m) (original GRPO, eq. 3 of DeepSeekMath)
 * - 'seq-mean-token-sum-norm': sum_{i,t} m L / (B * C) (Dr. GRPO: a constant normaliser C instead of |o_i|)
 * In the two seq-mean modes a row with no valid token is left out of the mean
 * over rows; in the constant-normaliser mode B counts all rows, since the point
 * of that mode is a normaliser that does not depend on the data.
 */
export function aggregateLoss(
  lossPerToken: tf.Tensor,
  mask: tf.Tensor,
  mode: LossAggregation,
  options: AggregateLossOptions = {},
): tf.Scalar {
  const fn = 'aggregateLoss';
  assertRank(fn, 'lossPerToken', lossPerToken, 2, '[B,T]');
  assertFloat(fn, 'lossPerToken', lossPerToken);
  assertShape(fn, 'mask', mask, lossPerToken.shape, 'lossPerToken');
  assertOneOf(fn, 'mode', mode, LOSS_AGGREGATIONS);
  const [batch, time] = lossPerToken.shape;
  const constant = options.constantNormaliser ?? time;
  if (options.constantNormaliser !== undefined) {
    assertNumber(fn, 'options.constantNormaliser', options.constantNormaliser, { minExclusive: 0 });
  }
  return tf.tidy(() => {
    switch (mode) {
      case 'token-mean':
        return maskedMean(lossPerToken, mask) as tf.Scalar;
      case 'seq-mean-token-sum':
      case 'seq-mean-token-mean': {
        const perSeq = mode === 'seq-mean-token-sum' ? maskedSum(lossPerToken, mask, 1) : maskedMean(lossPerToken, mask, 1);
        const rowHasTokens = tf.cast(tf.greater(tf.sum(tf.cast(mask, 'float32'), 1), 0), 'float32');
        return maskedMean(perSeq, rowHasTokens) as tf.Scalar;
      }
      case 'seq-mean-token-sum-norm':
        return tf.div(maskedSum(lossPerToken, mask), Math.max(batch, 1) * constant) as tf.Scalar;
    }
  });
}
