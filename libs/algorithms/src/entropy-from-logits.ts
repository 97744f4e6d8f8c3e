import * as tf from '@tensorflow/tfjs-core';
import type { LogProbsOptions } from './log-probs';
import { assertFloat, assertNumber, assertRank } from './shape-checks';

/**
 * Per-token entropy of softmax(logits / temperature): logits [B,T,V] -> [B,T].
 * H = -sum_v p_v log p_v with log p = z - lse(z), so H = lse(z) - sum_v p_v z_v,
 * which needs one logsumexp and no log of a probability that may be 0.
 * Reduce it with maskedMean(entropy, mask) for `objective/entropy`.
 */
export function entropyFromLogits(logits: tf.Tensor3D, options: LogProbsOptions = {}): tf.Tensor2D {
  const fn = 'entropyFromLogits';
  assertRank(fn, 'logits', logits, 3, '[B,T,V]');
  assertFloat(fn, 'logits', logits);
  const temperature = options.temperature ?? 1;
  assertNumber(fn, 'options.temperature', temperature, { minExclusive: 0 });
  return tf.tidy(() => {
    const z = tf.div(logits, temperature); // (B,T,V)
    const lse = tf.logSumExp(z, -1, true); // (B,T,1)
    const p = tf.exp(tf.sub(z, lse)); // (B,T,V)
    // A -Infinity logit (masked vocabulary) has p = 0, and 0 * -Infinity = NaN: clamp z
    // to -1e30 in the product, so such terms are 0 * -1e30 = 0. A comparison + tf.where
    // would do the same forward but breaks tf.grad (comparisons have no gradient).
    const pz = tf.mul(p, tf.maximum(z, -1e30)); // (B,T,V)
    return tf.sub(tf.squeeze(lse, [-1]), tf.sum(pz, -1)) as tf.Tensor2D; // (B,T)
  });
}
