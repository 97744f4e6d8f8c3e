/**
 * "Get log-probs", kept apart from every loss: the model, PPO, GRPO and DPO all
 * turn logits into per-token log-probabilities the same way.
 *
 * Numerically stable log-softmax. For logits z over a vocabulary of V entries:
 *   log softmax(z)_y = log( e^{z_y} / sum_v e^{z_v} ) = z_y - log sum_v e^{z_v}.
 * Evaluating sum_v e^{z_v} directly overflows for z ~ 90 (float32) and can
 * underflow to log(0) for very negative z. With m = max_v z_v,
 *   log sum_v e^{z_v} = m + log sum_v e^{z_v - m},
 * every exponent is <= 0 (no overflow) and the largest term is e^0 = 1, so the
 * sum is >= 1 (no log(0)). tf.logSumExp computes exactly this.
 *
 * The gather z_y is done as sum_v z_v * onehot(y)_v rather than tf.gather: it
 * costs a [B,T,V] one-hot but has a gradient on every backend (the Gather
 * gradient needs UnsortedSegmentSum, missing on wasm).
 */
import * as tf from '@tensorflow/tfjs-core';
import { maskedMean, maskedSum } from './masked-reductions';
import { assertFloat, assertNumber, assertRank, assertShape } from './shape-checks';

export interface LogProbsOptions {
  /** Logits are divided by this before the softmax (sampling temperature); default 1. */
  readonly temperature?: number;
}

function scaledLogits(fn: string, logits: tf.Tensor, options: LogProbsOptions): tf.Tensor {
  const temperature = options.temperature ?? 1;
  assertNumber(fn, 'options.temperature', temperature, { minExclusive: 0 });
  return temperature === 1 ? logits : tf.div(logits, temperature);
}

/** Full log-softmax over the last axis: logits [B,T,V] -> log-probs [B,T,V]. */
export function logProbsFromLogits(logits: tf.Tensor3D, options: LogProbsOptions = {}): tf.Tensor3D {
  const fn = 'logProbsFromLogits';
  assertRank(fn, 'logits', logits, 3, '[B,T,V]');
  assertFloat(fn, 'logits', logits);
  return tf.tidy(() => {
    const z = scaledLogits(fn, logits, options); // (B,T,V)
    return tf.sub(z, tf.logSumExp(z, -1, true)) as tf.Tensor3D; // (B,T,V) - (B,T,1)
  });
}

/**
 * Per-token log-prob of the given labels: logits [B,T,V], labels [B,T] int32
 * -> [B,T], log softmax(logits[b,t] / temperature)[labels[b,t]].
 * Labels must already be aligned with the logits (label t is the token that
 * position t predicts, i.e. the input shifted left by one). A label outside
 * [0, V) (such as -100 padding) gives a zero one-hot row and hence
 * -logsumexp: harmless at masked positions, wrong anywhere else.
 */
export function gatherLogProbs(logits: tf.Tensor3D, labels: tf.Tensor2D, options: LogProbsOptions = {}): tf.Tensor2D {
  const fn = 'gatherLogProbs';
  assertRank(fn, 'logits', logits, 3, '[B,T,V]');
  assertFloat(fn, 'logits', logits);
  assertShape(fn, 'labels', labels, logits.shape.slice(0, 2), 'logits[B,T]');
  if (labels.dtype !== 'int32') throw new Error(`${fn}: labels must be int32, got ${labels.dtype}`);
  const vocab = logits.shape[2];
  return tf.tidy(() => {
    const z = scaledLogits(fn, logits, options); // (B,T,V)
    const picked = tf.sum(tf.mul(z, tf.oneHot(labels, vocab)), -1); // (B,T)
    const lse = tf.logSumExp(z, -1); // (B,T)
    return tf.sub(picked, lse) as tf.Tensor2D;
  });
}

/** Sequence log-probs from per-token ones: the sum (DPO) and the length-average (IPO, SimPO). */
export interface SequenceLogProbs {
  /** [B]: sum_t m_t log p_t. */
  readonly sum: tf.Tensor1D;
  /** [B]: sum_t m_t log p_t / sum_t m_t; 0 for a row with no valid token. */
  readonly mean: tf.Tensor1D;
}

/** tokenLogProbs [B,T], mask [B,T] -> { sum [B], mean [B] }. Both returned tensors belong to the caller. */
export function sequenceLogProbs(tokenLogProbs: tf.Tensor2D, mask: tf.Tensor2D): SequenceLogProbs {
  const fn = 'sequenceLogProbs';
  assertRank(fn, 'tokenLogProbs', tokenLogProbs, 2, '[B,T]');
  assertFloat(fn, 'tokenLogProbs', tokenLogProbs);
  assertShape(fn, 'mask', mask, tokenLogProbs.shape, 'tokenLogProbs');
  return {
    sum: maskedSum(tokenLogProbs, mask, 1) as tf.Tensor1D,
    mean: maskedMean(tokenLogProbs, mask, 1) as tf.Tensor1D,
  };
}
