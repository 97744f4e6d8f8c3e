/**
 * PPO clipped value loss, as CleanRL (ppo.py, `v_loss_clipped`) and TRL's
 * PPOTrainer: the new value may move at most `clipRange` from the value at
 * rollout time, and the larger of the clipped and unclipped squared errors is
 * used (a pessimistic bound, like the policy clip; Schulman et al. 2017 use a
 * plain squared error, eq. 9; the clipped form is from OpenAI baselines' ppo2):
 *   v_clip = oldValues + clip(values - oldValues, -clipRange, clipRange)
 *   L = 0.5 * agg( max((values - returns)^2, (v_clip - returns)^2) )
 * Without `clipRange`, L = 0.5 * agg((values - returns)^2).
 * value/clipfrac is the share of valid tokens where the clipped error is the larger.
 */
import * as tf from '@tensorflow/tfjs-core';
import { aggregateLoss, LOSS_AGGREGATIONS } from './aggregate-loss';
import type { LossAggregation } from './aggregate-loss';
import type { LossOutput } from './loss-output';
import { maskedMean } from './masked-reductions';
import { assertFloat, assertNumber, assertOneOf, assertRank, assertShape } from './shape-checks';
import { tidyLoss } from './tidy-loss';

export type PpoValueMetricName = 'loss/value' | 'value/clipfrac' | 'value/mean';

export interface PpoValueLossArgs {
  /** [B,T] value predictions of the critic being optimised. */
  readonly values: tf.Tensor2D;
  /** [B,T] value predictions at rollout time. */
  readonly oldValues: tf.Tensor2D;
  /** [B,T] return targets (advantages + oldValues, from computeGae). */
  readonly returns: tf.Tensor2D;
  /** [B,T] 1 on response tokens, 0 on padding. */
  readonly actionMask: tf.Tensor2D;
  /** Value clip range, > 0 (TRL cliprange_value default 0.2); default none (unclipped). */
  readonly clipRange?: number;
  /** Default 'token-mean'. */
  readonly aggregation?: LossAggregation;
}

export function ppoValueLoss(args: PpoValueLossArgs): LossOutput<PpoValueMetricName> {
  const fn = 'ppoValueLoss';
  const { values, oldValues, returns, actionMask, clipRange } = args;
  assertRank(fn, 'values', values, 2, '[B,T]');
  assertFloat(fn, 'values', values);
  for (const [name, t] of [
    ['oldValues', oldValues],
    ['returns', returns],
  ] as const) {
    assertShape(fn, name, t, values.shape, 'values');
    assertFloat(fn, name, t);
  }
  assertShape(fn, 'actionMask', actionMask, values.shape, 'values');
  if (clipRange !== undefined) assertNumber(fn, 'clipRange', clipRange, { minExclusive: 0 });
  const aggregation = args.aggregation ?? 'token-mean';
  assertOneOf(fn, 'aggregation', aggregation, LOSS_AGGREGATIONS);

  return tidyLoss<PpoValueMetricName>(() => {
    const err1 = tf.sub(values, returns); // (B,T)
    const vfLosses1 = tf.mul(err1, err1); // (B,T)
    let vfLosses = vfLosses1;
    let clipped: tf.Tensor = tf.zerosLike(values);
    if (clipRange !== undefined) {
      const vClipped = tf.add(oldValues, tf.clipByValue(tf.sub(values, oldValues), -clipRange, clipRange)); // (B,T)
      const err2 = tf.sub(vClipped, returns);
      const vfLosses2 = tf.mul(err2, err2); // (B,T)
      vfLosses = tf.maximum(vfLosses1, vfLosses2);
      clipped = tf.cast(tf.greater(vfLosses2, vfLosses1), 'float32');
    }
    const loss = tf.mul(0.5, aggregateLoss(vfLosses, actionMask, aggregation)) as tf.Scalar;
    return {
      loss,
      metrics: {
        'loss/value': loss,
        'value/clipfrac': maskedMean(clipped, actionMask),
        'value/mean': maskedMean(values, actionMask),
      },
    };
  });
}
