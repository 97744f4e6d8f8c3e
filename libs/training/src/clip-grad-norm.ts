/**
 * Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_:
 *   norm = sqrt(sum_i ||g_i||^2);  if norm > max: g_i <- g_i * max / (norm + 1e-6)
 * The norm is returned before clipping (what TRL logs as grad_norm). A
 * non-finite norm is returned as is and nothing is scaled: the caller skips
 * the step.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface ClippedGradients {
  grads: tf.Tensor[];
  /** Global L2 norm before clipping. */
  norm: number;
  clipped: boolean;
}

/** Returns new gradient tensors (the inputs are disposed when they are replaced). */
export function clipGradNorm(grads: tf.Tensor[], maxNorm: number | null): ClippedGradients {
  const sq = tf.tidy(() => tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
  const norm = Math.sqrt(sq.dataSync()[0]);
  sq.dispose();
  if (maxNorm === null || !Number.isFinite(norm) || norm <= maxNorm) return { grads, norm, clipped: false };
  const scale = maxNorm / (norm + 1e-6);
  const out = grads.map((g) => tf.mul(g, scale));
  tf.dispose(grads);
  return { grads: out, norm, clipped: true };
}
