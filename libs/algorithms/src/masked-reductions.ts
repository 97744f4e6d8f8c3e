/**
 * Masked reductions, the one place every loss reduces over valid tokens.
 *
 * Convention (used throughout the package): the mask is 1 for tokens that count
 * and 0 for padding / prompt tokens. Masked-out positions contribute exactly 0,
 * even if they hold NaN or +-Infinity (they are selected away with tf.where, not
 * multiplied, because 0 * Infinity = NaN), and are excluded from the
 * denominator. A mean over nothing (an all-zero mask, or an all-zero row when
 * reducing along an axis) is defined as 0, never NaN.
 * That NaN-safety is for the forward value: a gradient flowing back through
 * e.g. exp(NaN) upstream is still NaN, so keep padded log-probs finite (any
 * finite filler will do) when the loss is differentiated.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertFloat, assertShape } from './shape-checks';

function checkArgs(fn: string, values: tf.Tensor, mask: tf.Tensor, axis: number | undefined): number | undefined {
  assertFloat(fn, 'values', values);
  assertShape(fn, 'mask', mask, values.shape, 'values');
  if (axis === undefined) return undefined;
  if (!Number.isInteger(axis) || axis < -values.rank || axis >= values.rank) {
    throw new Error(`${fn}: axis must be an integer in [${-values.rank}, ${values.rank - 1}] for values of shape [${values.shape.join(',')}], got ${axis}`);
  }
  return axis < 0 ? axis + values.rank : axis;
}

/** values * mask with masked-out positions forced to exactly 0 (NaN/Inf-safe). */
function selectMasked(values: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  const m = tf.cast(mask, 'float32');
  return tf.where(tf.notEqual(m, 0), tf.mul(values, m), tf.zerosLike(values));
}

/**
 * Sum of values * mask, over everything (scalar) or along `axis` (that axis removed).
 */
export function maskedSum(values: tf.Tensor, mask: tf.Tensor, axis?: number): tf.Tensor {
  const ax = checkArgs('maskedSum', values, mask, axis);
  return tf.tidy(() => tf.sum(selectMasked(values, mask), ax));
}

/**
 * sum(values * mask) / sum(mask), over everything (scalar) or along `axis`.
 * Where sum(mask) is 0 the result is 0.
 */
export function maskedMean(values: tf.Tensor, mask: tf.Tensor, axis?: number): tf.Tensor {
  const ax = checkArgs('maskedMean', values, mask, axis);
  return tf.tidy(() => {
    const num = tf.sum(selectMasked(values, mask), ax);
    const count = tf.sum(tf.cast(mask, 'float32'), ax);
    // Where count is 0 the numerator is exactly 0 too, so dividing by 1 gives 0.
    const safeCount = tf.where(tf.greater(count, 0), count, tf.onesLike(count));
    return tf.div(num, safeCount);
  });
}

/**
 * Variance of the valid entries (scalar), around their masked mean. With
 * `unbiased` (the default, as TRL's masked_var) it is scaled by n / (n - 1),
 * n = sum(mask); with n <= 1 there is no spread to measure and the result is 0.
 */
export function maskedVariance(values: tf.Tensor, mask: tf.Tensor, options: { unbiased?: boolean } = {}): tf.Scalar {
  checkArgs('maskedVariance', values, mask, undefined);
  const unbiased = options.unbiased ?? true;
  return tf.tidy(() => {
    const mean = maskedMean(values, mask);
    const centred = tf.sub(values, mean);
    const biased = maskedMean(tf.mul(centred, centred), mask);
    if (!unbiased) return biased as tf.Scalar;
    const n = tf.sum(tf.cast(mask, 'float32'));
    // n / max(n - 1, 1): for n <= 1 the biased variance is already 0.
    const bessel = tf.div(n, tf.maximum(tf.sub(n, 1), 1));
    return tf.mul(biased, bessel) as tf.Scalar;
  });
}

export interface MaskedWhitenOptions {
  /** Subtract the mean (default true). False adds the mean back after scaling (TRL's shift_mean=False). */
  readonly shiftMean?: boolean;
  /** Bessel-corrected variance (default true, as TRL's masked_whiten). */
  readonly unbiased?: boolean;
  /** Added to the variance before the square root (default 1e-8). */
  readonly eps?: number;
}

/**
 * Advantage whitening over the valid entries (TRL masked_whiten):
 * (x - mean) / sqrt(var + eps), then + mean again if `shiftMean` is false.
 * Statistics are global over all valid entries; masked-out positions of the
 * result are 0.
 */
export function maskedWhiten(values: tf.Tensor, mask: tf.Tensor, options: MaskedWhitenOptions = {}): tf.Tensor {
  checkArgs('maskedWhiten', values, mask, undefined);
  const eps = options.eps ?? 1e-8;
  if (!Number.isFinite(eps) || eps < 0) throw new Error(`maskedWhiten: eps must be a finite number >= 0, got ${eps}`);
  const shiftMean = options.shiftMean ?? true;
  return tf.tidy(() => {
    const mean = maskedMean(values, mask);
    const variance = maskedVariance(values, mask, { unbiased: options.unbiased ?? true });
    let whitened = tf.mul(tf.sub(values, mean), tf.rsqrt(tf.add(variance, eps)));
    if (!shiftMean) whitened = tf.add(whitened, mean);
    return selectMasked(whitened, mask);
  });
}
