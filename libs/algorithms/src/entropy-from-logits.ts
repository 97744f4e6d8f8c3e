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
    // p_v * z_v with p_v = 0 taken as 0, so -Infinity logits (masked vocabulary) give no NaN.
    const pz = tf.where(tf.greater(p, 0), tf.mul(p, z), tf.zerosLike(z)); // (B,T,V)
    return tf.sub(tf.squeeze(lse, [-1]), tf.sum(pz, -1)) as tf.Tensor2D; // (B,T)
  });
}
