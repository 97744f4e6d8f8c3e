/**
 * Batched per-token log-probs of (prompt, completion) pairs: the numbers PPO's
 * importance ratios, the KL penalty and DPO's implicit rewards are built from.
 *
 * For pair i with prompt p (length P) and completion c (length C), row i holds
 *   logprobs[i, j] = log softmax(logits(p ++ c[:j]) / temperature)[c[j]],  j < C
 * and 0 in the padding columns j >= C. When P = 0 the first completion token
 * has no context and its entry is 0 (as tokenLogProbs reports position 0).
 *
 * Only the C positions that predict completion tokens go through the LM head,
 * so the [M, V] logits never cover prompt positions, and the target entry is
 * picked with a gather on the flat [M * V] log-softmax (forward only; no
 * gradient is taken here). log softmax(z)_k = z_k - m - log Σ exp(z_j - m) with
 * m = max z (tf.logSoftmax), so nothing overflows; entropy = -Σ_k p_k log p_k
 * with p = exp(log p), finite because log-softmax of finite logits is finite.
 */
import * as tf from '@tensorflow/tfjs-core';
import { forwardHidden, lmLogits, padBatch, toForwardTokens, type LlamaModel } from '@posttrain/model';
import { invalidField } from './serving-error';

export interface LogProbsPair {
  promptIds: readonly number[];
  completionIds: readonly number[];
}

export interface BatchLogProbsOptions {
  /** Logits are divided by it before the softmax; > 0, default 1. */
  temperature?: number;
  returnEntropies?: boolean;
  /** Most pairs in one forward pass (default 64). */
  maxBatchSequences?: number;
  /** Most padded tokens (rows x longest row) in one forward pass (default 16384). */
  maxBatchTokens?: number;
  /** Request field that holds the pairs, for errors; default `sequences`. */
  field?: string;
}

export interface BatchLogProbs {
  /** Row-major [pairs, maxLength], 0-padded. */
  logprobs: Float32Array;
  /** Row-major [pairs, maxLength], present when asked for. */
  entropies?: Float32Array;
  /** Completion length of each pair (the valid prefix of its row). */
  lengths: number[];
  maxLength: number;
}

/** Checks token ids and lengths against the model; throws ServingError (invalid-argument) naming the pair. */
export function validateLogProbsPairs(model: LlamaModel, pairs: readonly LogProbsPair[], field = 'sequences'): void {
  const V = model.config.vocabSize;
  const maxLen = model.config.maxPositionEmbeddings;
  if (pairs.length === 0) throw invalidField(field, 'empty, expected at least one (prompt, completion) pair');
  pairs.forEach((p, i) => {
    if (p.completionIds.length === 0) throw invalidField(`${field}[${i}].completion_ids`, 'empty, expected at least one token to score');
    for (const [name, ids] of [['prompt_ids', p.promptIds], ['completion_ids', p.completionIds]] as const) {
      ids.forEach((id, j) => {
        if (!Number.isInteger(id) || id < 0 || id >= V) throw invalidField(`${field}[${i}].${name}[${j}]`, `got ${id}, expected a token id in [0, ${V})`);
      });
    }
    const total = p.promptIds.length + p.completionIds.length;
    if (total > maxLen) throw invalidField(`${field}[${i}]`, `prompt + completion is ${total} tokens, more than the model's max_position_embeddings ${maxLen}`);
  });
}

function checkOptions(o: BatchLogProbsOptions): { temperature: number; maxSeq: number; maxTokens: number } {
  const temperature = o.temperature ?? 1;
  if (!(Number.isFinite(temperature) && temperature > 0)) throw invalidField('temperature', `got ${temperature}, expected a finite number > 0`);
  const maxSeq = o.maxBatchSequences ?? 64;
  const maxTokens = o.maxBatchTokens ?? 16_384;
  if (!Number.isInteger(maxSeq) || maxSeq < 1) throw new RangeError(`maxBatchSequences: got ${maxSeq}, expected an integer >= 1`);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`maxBatchTokens: got ${maxTokens}, expected an integer >= 1`);
  return { temperature, maxSeq, maxTokens };
}

/** Splits pair indices, in order, into forward passes within the sequence and padded-token budgets (a pair longer than the token budget runs alone). */
export function planLogProbBatches(pairs: readonly LogProbsPair[], maxSeq: number, maxTokens: number): number[][] {
  const batches: number[][] = [];
  let current: number[] = [];
  let longest = 0;
  pairs.forEach((p, i) => {
    const len = p.promptIds.length + p.completionIds.length;
    const newLongest = Math.max(longest, len);
    if (current.length > 0 && (current.length + 1 > maxSeq || (current.length + 1) * newLongest > maxTokens)) {
      batches.push(current);
      current = [];
      longest = 0;
    }
    current.push(i);
    longest = Math.max(longest, len);
  });
  if (current.length > 0) batches.push(current);
  return batches;
}

/** One forward pass over some pairs; writes their rows into `out`. */
function scoreChunk(model: LlamaModel, pairs: readonly LogProbsPair[], rows: number[], temperature: number, out: BatchLogProbs): void {
  const V = model.config.vocabSize;
  const fulls = rows.map((i) => [...pairs[i].promptIds, ...pairs[i].completionIds]);
  const tokens = toForwardTokens(padBatch(fulls, 0), V);
  const T = tokens.length;
  // Entry m predicts completion token j of pair rows[b] from flat position b*T + P + j - 1.
  const hiddenRows: number[] = [];
  const flatTargets: number[] = [];
  const dest: number[] = [];
  rows.forEach((i, b) => {
    const P = pairs[i].promptIds.length;
    pairs[i].completionIds.forEach((id, j) => {
      if (P + j === 0) return; // no context: reported as 0
      flatTargets.push(hiddenRows.length * V + id);
      hiddenRows.push(b * T + P + j - 1);
      dest.push(i * out.maxLength + j);
    });
  });
  if (hiddenRows.length === 0) return;
  const wantEntropy = out.entropies !== undefined;
  const res = tf.tidy(() => {
    const { hidden } = forwardHidden(model, tokens); // (B*T, D)
    const picked = tf.gather(hidden, tf.tensor1d(Int32Array.from(hiddenRows), 'int32')); // (M, D)
    let logits = lmLogits(model, picked); // (M, D) x (D, V) -> (M, V)
    if (temperature !== 1) logits = tf.div(logits, temperature);
    const logp = tf.logSoftmax(logits); // (M, V)
    const lp = tf.gather(tf.reshape(logp, [-1]), tf.tensor1d(Int32Array.from(flatTargets), 'int32')); // (M,)
    const ent = wantEntropy ? tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)) : tf.zeros([0]); // (M,)
    return { lp, ent };
  });
  const lp = res.lp.dataSync();
  const ent = wantEntropy ? res.ent.dataSync() : undefined;
  tf.dispose([res.lp, res.ent]);
  for (let m = 0; m < dest.length; m++) {
    out.logprobs[dest[m]] = lp[m];
    if (ent && out.entropies) out.entropies[dest[m]] = ent[m];
  }
}

/**
 * Log-probs (and optionally entropies) of every pair's completion tokens, in
 * forward passes planned by {@link planLogProbBatches}. Between passes it
 * yields to the event loop so a server stays responsive.
 */
export async function computeBatchLogProbs(model: LlamaModel, pairs: readonly LogProbsPair[], options: BatchLogProbsOptions = {}): Promise<BatchLogProbs> {
  const { temperature, maxSeq, maxTokens } = checkOptions(options);
  validateLogProbsPairs(model, pairs, options.field);
  const lengths = pairs.map((p) => p.completionIds.length);
  const maxLength = Math.max(...lengths);
  const out: BatchLogProbs = {
    logprobs: new Float32Array(pairs.length * maxLength),
    lengths,
    maxLength,
    ...(options.returnEntropies ? { entropies: new Float32Array(pairs.length * maxLength) } : {}),
  };
  const batches = planLogProbBatches(pairs, maxSeq, maxTokens);
  for (let k = 0; k < batches.length; k++) {
    if (k > 0) await new Promise<void>((r) => setImmediate(r));
    scoreChunk(model, pairs, batches[k], temperature, out);
  }
  return out;
}
