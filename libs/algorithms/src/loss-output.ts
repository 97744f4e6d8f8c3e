/**
 * The one return convention of every loss in this package.
 *
 * `loss` is a scalar tensor, differentiable, owned by the caller (dispose it, or
 * let tf.variableGrads do so). `metrics` are plain numbers read from the device
 * in one batched read when the loss is computed: log them straight away; they
 * never need disposing and never carry gradients. Metric names follow TRL /
 * CleanRL (`rewards/margins`, `policy/clipfrac`, `loss/value`, ...).
 */
import type * as tf from '@tensorflow/tfjs-core';

export interface LossOutput<K extends string> {
  /** Scalar loss, usable under tf.grad / tf.variableGrads. */
  readonly loss: tf.Scalar;
  /** Diagnostics as plain numbers (already read back). */
  readonly metrics: Readonly<Record<K, number>>;
}
