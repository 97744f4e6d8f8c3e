/**
 * DPO training. The reference log-probs of every pair are computed once per
 * dataset before training, through a function that a caller can inject (the
 * reference service) or, by default, a frozen local copy of the model, and
 * cached by record line: a training step then needs one policy forward pass
 * of 2B rows. Sequence log-probs are sums over response tokens (means for
 * IPO, as TRL does).
 */
import * as tf from '@tensorflow/tfjs-core';
import { dpoLoss } from '@posttrain/algorithms';
import type { DpoLossType } from '@posttrain/algorithms';
import type { DataConfig, PreferenceBatch, RecordSource, TokenizerLike } from '@posttrain/data';
import { createPreferenceLoader } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { tokenLogProbs } from '@posttrain/model';
import { pairWeightedEval, preferenceBatchTokens, stackPreferenceRows } from './create-reward-task';
import type { MicroBatchLoss, StageTask, StageTaskOptions } from './stage-task';
import { loaderTask, tidyLossOutput } from './stage-task';

/**
 * Per-token log-probs of each sequence's tokens from promptLengths[i] (at least 1) to its end,
 * under the reference model: the contract of the reference service's ComputeLogProbs.
 */
export type ReferenceLogProbsFn = (request: { sequences: number[][]; promptLengths: number[] }) => Promise<number[][]>;

/** Reference sequence log-probs (sum over response tokens, and their count) of chosen and rejected, by record line. */
export type ReferenceCache = Map<number, { chosen: number; rejected: number; chosenTokens: number; rejectedTokens: number }>;

/**
 * Computes the reference cache of one split: every record once, in file order.
 * Checks that the function returns one log-prob per response token.
 */
export async function computeReferenceCache(source: RecordSource, tokenizer: TokenizerLike, data: DataConfig, reference: ReferenceLogProbsFn): Promise<ReferenceCache> {
  const cache: ReferenceCache = new Map();
  const loader = createPreferenceLoader(source, tokenizer, { ...data, shuffle: false, dropLast: false });
  for await (const batch of loader.epochBatches()) {
    const { batchSize: B, seqLen: T } = batch;
    const sequences: number[][] = [];
    const promptLengths: number[] = [];
    for (const [ids, mask] of [[batch.chosenInputIds, batch.chosenAttentionMask], [batch.rejectedInputIds, batch.rejectedAttentionMask]] as const) {
      for (let b = 0; b < B; b++) {
        let len = 0;
        for (let t = 0; t < T; t++) len += mask[b * T + t];
        sequences.push(Array.from(ids.subarray(b * T, b * T + len)));
        promptLengths.push(batch.promptLengths[b]);
      }
    }
    const lps = await reference({ sequences, promptLengths });
    if (!Array.isArray(lps) || lps.length !== sequences.length) throw new Error(`reference log-probs: expected ${sequences.length} rows, got ${Array.isArray(lps) ? lps.length : JSON.stringify(lps)}`);
    const sums = lps.map((row, i) => {
      const want = sequences[i].length - Math.max(1, promptLengths[i]);
      if (!Array.isArray(row) || row.length !== want) throw new Error(`reference log-probs[${i}] (line ${batch.lines[i % B]}): expected ${want} response-token log-probs, got ${Array.isArray(row) ? row.length : JSON.stringify(row)}`);
      let s = 0;
      for (const v of row) {
        if (typeof v !== 'number' || Number.isNaN(v) || v > 0) throw new Error(`reference log-probs[${i}] (line ${batch.lines[i % B]}): ${JSON.stringify(v)} is not a log-probability`);
        s += v;
      }
      return { sum: s, count: want };
    });
    for (let b = 0; b < B; b++) {
      cache.set(batch.lines[b], { chosen: sums[b].sum, rejected: sums[B + b].sum, chosenTokens: sums[b].count, rejectedTokens: sums[B + b].count });
    }
  }
  return cache;
}

export interface DpoLossOptions {
  beta: number;
  lossType: DpoLossType;
  labelSmoothing: number;
  /** Weight of the chosen replies' NLL added to the loss (RPO, TRL's rpo_alpha); 0 = plain DPO. */
  rpoAlpha: number;
}

/** Response-token mask [2B, T] (chosen rows then rejected), 0 at t = 0 where nothing is predicted. */
function responseMask(batch: PreferenceBatch): Float32Array {
  const { batchSize: B, seqLen: T } = batch;
  const out = new Float32Array(2 * B * T);
  out.set(batch.chosenLossMask, 0);
  out.set(batch.rejectedLossMask, B * T);
  for (let r = 0; r < 2 * B; r++) out[r * T] = 0;
  return out;
}

export function dpoBatchLoss(model: LlamaModel, batch: PreferenceBatch, cache: ReferenceCache, options: DpoLossOptions, dropoutSeed?: number): MicroBatchLoss {
  const { batchSize: B, seqLen: T } = batch;
  const refs = batch.lines.map((line) => {
    const r = cache.get(line);
    if (!r) throw new Error(`DPO: no cached reference log-probs for line ${line}`);
    return r;
  });
  const average = options.lossType === 'ipo';
  const refChosen = Float32Array.from(refs, (r) => (average ? r.chosen / Math.max(1, r.chosenTokens) : r.chosen));
  const refRejected = Float32Array.from(refs, (r) => (average ? r.rejected / Math.max(1, r.rejectedTokens) : r.rejected));
  const maskData = responseMask(batch);
  let chosenTokens = 0; // response tokens of the chosen rows (the mask's first B rows)
  for (let i = 0; i < B * T; i++) chosenTokens += maskData[i];
  const out = tidyLossOutput<string>(() => {
    const lp = tokenLogProbs(model, stackPreferenceRows(batch), { dropoutSeed }); // (2B, T)
    const mask = tf.tensor2d(maskData, [2 * B, T]);
    let seq = tf.sum(tf.mul(lp, mask), 1); // (2B)
    // RPO's NLL: the mean over every chosen response token of the batch (TRL's cross-entropy over the chosen rows).
    const chosenNll = options.rpoAlpha > 0 ? (tf.div(tf.neg(tf.sum(tf.slice(seq, [0], [B]))), Math.max(chosenTokens, 1)) as tf.Scalar) : undefined;
    if (average) seq = tf.div(seq, tf.maximum(tf.sum(mask, 1), 1));
    return dpoLoss({
      policyChosenLogProbs: tf.slice(seq, [0], [B]) as tf.Tensor1D,
      policyRejectedLogProbs: tf.slice(seq, [B], [B]) as tf.Tensor1D,
      referenceChosenLogProbs: tf.tensor1d(refChosen),
      referenceRejectedLogProbs: tf.tensor1d(refRejected),
      beta: options.beta,
      lossType: options.lossType,
      labelSmoothing: options.labelSmoothing,
      rpoAlpha: options.rpoAlpha,
      chosenNll,
    });
  });
  return { loss: out.loss, metrics: { ...out.metrics }, tokens: preferenceBatchTokens(batch) };
}

export interface DpoTaskOptions extends StageTaskOptions, DpoLossOptions {
  trainCache: ReferenceCache;
  /** The eval split's reference cache; null when there is no eval split (evaluate() then returns null). */
  evalCache: ReferenceCache | null;
}

export function createDpoTask(options: DpoTaskOptions): StageTask<PreferenceBatch> {
  const evalCache = options.evalCache;
  return loaderTask<PreferenceBatch>(options, {
    createLoader: (source, config, position) => createPreferenceLoader(source, options.tokenizer, config, position),
    loss: (batch, seed) => dpoBatchLoss(options.model, batch, options.trainCache, options, seed),
    evalLoss: evalCache === null ? null : (batch) => dpoBatchLoss(options.model, batch, evalCache, options),
    evalContribution: pairWeightedEval('loss/dpo'),
  });
}
