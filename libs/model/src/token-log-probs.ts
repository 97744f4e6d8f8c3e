/**
 * Per-token log-probabilities of given sequences under the model.
 *
 * out[b, t] = log softmax(logits[b, t-1] / temperature)[ids[b, t]], the log-prob of token t given
 * the tokens before it. It is 0 where token t is padding, where t = 0, where the token before
 * it is padding (the first real token of a left-padded row has nothing to be predicted from), or,
 * in packed rows (segmentIds), where the token before it belongs to another segment.
 *
 * log softmax(z)_i = z_i - logsumexp(z), computed by tf.logSoftmax as (z_i - max z) - log Σ exp(z_j - max z),
 * so no exp overflows; the target entries are picked by pickTargets.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from './llama-model';
import type { TokenBatch } from './token-batch';
import { padBatch, toForwardTokens } from './token-batch';
import { forwardHidden, lmLogits } from './transformer-forward';

export interface LogProbOptions {
  /** Logits are divided by this before the softmax; default 1. */
  temperature?: number;
  /** LoRA dropout seed; only for training passes. */
  dropoutSeed?: number;
}

function checkTemperature(t: number): void {
  if (!(typeof t === 'number' && Number.isFinite(t) && t > 0)) throw new Error(`temperature: ${JSON.stringify(t)} is not a positive number`);
}

/**
 * logp[n, ids[n]] for every row n. A gather of the flattened matrix where the backend can take its
 * gradient (UnsortedSegmentSum: cpu, tfjs-node, wasm with @posttrain/backend's patches); otherwise a
 * one-hot product, which needs another [N, V] buffer but only elementwise kernels.
 */
export function pickTargets(logp: tf.Tensor2D, ids: Int32Array, vocab: number, forceOneHot = false): tf.Tensor1D {
  const idx = tf.tensor1d(ids, 'int32');
  if (!forceOneHot && tf.getKernel('UnsortedSegmentSum', tf.getBackend()) !== undefined) {
    const flat = tf.add(idx, tf.mul(tf.range(0, ids.length, 1, 'int32'), tf.scalar(vocab, 'int32'))); // n * V + ids[n]
    return tf.gather(tf.reshape(logp, [-1]), flat) as tf.Tensor1D;
  }
  return tf.sum(tf.mul(logp, tf.cast(tf.oneHot(idx, vocab), 'float32')), -1) as tf.Tensor1D;
}

/** [B, T] tensor of per-token log-probs (see module doc); differentiable, call inside tf.tidy / tf.variableGrads. */
export function tokenLogProbs(model: LlamaModel, batch: TokenBatch, options: LogProbOptions = {}): tf.Tensor2D {
  return logProbsAndMaybeEntropy(model, batch, options, false).logProbs;
}

/**
 * Per-token log-probs and the entropy of each predictive distribution, from one forward pass, both [B, T]
 * and aligned the same way: entropy[b, t] = -Σ_v p_v log p_v of softmax(logits[b, t-1] / temperature),
 * the distribution token t was drawn from (0 where the log-prob is 0).
 */
export function tokenLogProbsAndEntropy(model: LlamaModel, batch: TokenBatch, options: LogProbOptions = {}): { logProbs: tf.Tensor2D; entropy: tf.Tensor2D } {
  const r = logProbsAndMaybeEntropy(model, batch, options, true);
  return { logProbs: r.logProbs, entropy: r.entropy! };
}

function logProbsAndMaybeEntropy(model: LlamaModel, batch: TokenBatch, options: LogProbOptions, withEntropy: boolean): { logProbs: tf.Tensor2D; entropy?: tf.Tensor2D } {
  const temperature = options.temperature ?? 1;
  checkTemperature(temperature);
  const tokens = toForwardTokens(batch, model.config.vocabSize);
  const { batch: B, length: T, ids, mask, segmentIds } = tokens;
  const V = model.config.vocabSize;
  // nextIds[n] is the token that position n predicts; valid[n] says whether that prediction counts.
  const nextIds = new Int32Array(B * T);
  const valid = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const n = b * T + t;
      nextIds[n] = ids[n + 1];
      valid[n] = mask[n] && mask[n + 1] && (segmentIds === undefined || segmentIds[n] === segmentIds[n + 1]) ? 1 : 0;
    }
  }
  // Position t predicts token t+1: shift right by one so values line up with the predicted token.
  const align = (perPosition: tf.Tensor1D): tf.Tensor2D => {
    const next = tf.reshape(tf.mul(perPosition, tf.tensor1d(valid)), [B, T]);
    if (T === 1) return tf.zeros([B, 1]) as tf.Tensor2D;
    return tf.concat([tf.zeros([B, 1]), tf.slice(next, [0, 0], [B, T - 1])], 1) as tf.Tensor2D;
  };
  return tf.tidy(() => {
    const { hidden } = forwardHidden(model, tokens, { dropoutSeed: options.dropoutSeed });
    let logits = lmLogits(model, hidden); // (N, V)
    if (temperature !== 1) logits = tf.div(logits, temperature);
    const logp = tf.logSoftmax(logits); // (N, V)
    const logProbs = align(pickTargets(logp, nextIds, V)); // (B, T)
    if (!withEntropy) return { logProbs };
    const entropy = align(tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)) as tf.Tensor1D); // -Σ p log p
    return { logProbs, entropy };
  });
}

/** Full logits [B, T, V] (for inspection and tests). */
export function forwardLogits(model: LlamaModel, batch: TokenBatch): tf.Tensor3D {
  const tokens = toForwardTokens(batch, model.config.vocabSize);
  return tf.tidy(() => tf.reshape(lmLogits(model, forwardHidden(model, tokens).hidden), [tokens.batch, tokens.length, -1]) as tf.Tensor3D);
}

/**
 * Log-probs of each sequence's tokens 1..len-1 (plain numbers), batching `batchSize` sequences at a time.
 * With `promptLengths`, only the tokens from promptLengths[i] on are returned (the completion's).
 */
export function sequenceTokenLogProbs(
  model: LlamaModel,
  sequences: number[][],
  options: LogProbOptions & { batchSize?: number; promptLengths?: number[] } = {},
): number[][] {
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize: ${JSON.stringify(batchSize)} is not a positive integer`);
  const out: number[][] = [];
  for (let s = 0; s < sequences.length; s += batchSize) {
    const chunk = sequences.slice(s, s + batchSize);
    chunk.forEach((seq, i) => {
      if (!Array.isArray(seq) || seq.length < 1) throw new Error(`sequences[${s + i}]: expected at least one token id`);
    });
    const lp = tokenLogProbs(model, padBatch(chunk), options);
    const values = lp.arraySync();
    lp.dispose();
    chunk.forEach((seq, i) => {
      const from = Math.max(1, options.promptLengths?.[s + i] ?? 1);
      out.push(values[i].slice(from, seq.length));
    });
  }
  return out;
}
