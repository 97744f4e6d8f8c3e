/**
 * Batched sampling with a KV cache (one step at a time: decode-step.ts, which
 * the serving engine shares).
 *
 * Prompts of different lengths are left-padded into one batch; rotary positions
 * count real tokens only and padded keys are masked, so each row computes what
 * it would alone. The prompt is run once, then one token per step attends to the
 * cached keys/values.
 *
 * Each sampled token's log-prob is taken under softmax(logits / temperature)
 * before top-k/top-p truncation: the same number tokenLogProbs computes at that
 * temperature for the finished sequence, which PPO's importance ratio needs.
 * Temperature 0 means greedy decoding; its log-probs are then reported at
 * temperature 1.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@posttrain/random';
import { appendCacheColumn, lastPositionLogits, leftPadPrompts, sampleToken, type SamplingParams } from './decode-step';
import type { LlamaModel } from './llama-model';
import type { KvCache } from './transformer-forward';
import { positionsFromMask } from './transformer-forward';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy. Default: generation_config.json's temperature, else 1. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 = off. Default: generation_config.json's top_k, else 0. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p; 1 = off. Default: generation_config.json's top_p, else 1. */
  topP?: number;
  /** Tokens that end a row (included in its output); default: the model's eos ids. */
  stopTokens?: number[];
  /** Seed for the sampler; or pass `rng` to continue a stream (e.g. restored from a checkpoint). */
  seed?: number | string;
  rng?: Rng;
  /** Default true; false recomputes the whole sequence every step (reference / benchmark). */
  useCache?: boolean;
  /** Token fed to rows that have finished (masked out); default the model's pad id, else 0. */
  padTokenId?: number;
  /** Called with each step's next-token logits [B * V] (row-major), before temperature. */
  onStepLogits?: (step: number, logits: Float32Array) => void;
}

export type FinishReason = 'stop' | 'length';

export interface Completion {
  /** Generated tokens (prompt excluded; a stop token, when hit, is the last one). */
  tokens: number[];
  /** log p(token) under softmax(logits / temperature), one per token. */
  logProbs: number[];
  finishReason: FinishReason;
}

function validate(model: LlamaModel, prompts: number[][], o: GenerateOptions): SamplingParams {
  const V = model.config.vocabSize;
  if (!Array.isArray(prompts) || prompts.length === 0) throw new Error(`prompts: expected a non-empty array of token id arrays`);
  prompts.forEach((p, i) => {
    if (!Array.isArray(p) || p.length === 0) throw new Error(`prompts[${i}]: expected a non-empty array of token ids`);
    p.forEach((id, j) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`prompts[${i}][${j}]: token id ${JSON.stringify(id)} is not an integer in [0, ${V})`);
    });
  });
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) throw new Error(`maxNewTokens: ${JSON.stringify(o.maxNewTokens)} is not a positive integer`);
  const d = model.generationDefaults;
  const temperature = o.temperature ?? d.temperature ?? 1;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) throw new Error(`temperature: ${JSON.stringify(o.temperature)} is not a number >= 0`);
  const topK = o.topK ?? d.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0) throw new Error(`topK: ${JSON.stringify(o.topK)} is not an integer >= 0`);
  const topP = o.topP ?? d.topP ?? 1;
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new Error(`topP: ${JSON.stringify(o.topP)} is not a number in (0, 1]`);
  for (const [i, s] of (o.stopTokens ?? []).entries()) {
    if (!Number.isInteger(s) || s < 0 || s >= V) throw new Error(`stopTokens[${i}]: ${JSON.stringify(s)} is not a token id in [0, ${V})`);
  }
  if (o.padTokenId !== undefined && (!Number.isInteger(o.padTokenId) || o.padTokenId < 0 || o.padTokenId >= V)) {
    throw new Error(`padTokenId: ${JSON.stringify(o.padTokenId)} is not a token id in [0, ${V})`);
  }
  const longest = Math.max(...prompts.map((p) => p.length)) + o.maxNewTokens;
  if (longest > model.config.maxPositionEmbeddings) {
    throw new Error(`maxNewTokens: ${o.maxNewTokens} new tokens after a ${longest - o.maxNewTokens}-token prompt exceed max_position_embeddings (${model.config.maxPositionEmbeddings})`);
  }
  return { temperature, topK, topP };
}

function disposeCache(cache: KvCache | undefined): void {
  if (!cache) return;
  tf.dispose(cache.keys);
  tf.dispose(cache.values);
}

/** Samples up to maxNewTokens for each prompt. */
export function generate(model: LlamaModel, prompts: number[][], options: GenerateOptions): Completion[] {
  const params = validate(model, prompts, options);
  const rng = options.rng ?? new Rng(options.seed ?? 0);
  const stop = new Set(options.stopTokens ?? model.generationDefaults.eosTokenIds);
  const pad = options.padTokenId ?? model.generationDefaults.padTokenId ?? 0;
  const useCache = options.useCache ?? true;
  const V = model.config.vocabSize;
  const B = prompts.length;
  const promptBatch = leftPadPrompts(prompts, pad);
  const L = promptBatch.length;
  let ids = promptBatch.ids;
  let mask = promptBatch.mask;
  let length = L;
  const nextPosition = new Int32Array(prompts.map((p) => p.length));

  const out: Completion[] = prompts.map(() => ({ tokens: [], logProbs: [], finishReason: 'length' }));
  const done = new Array<boolean>(B).fill(false);
  let cache: KvCache | undefined;
  let step = 0;
  try {
    const first = lastPositionLogits(model, promptBatch, undefined, useCache);
    let logits = first.logits;
    if (useCache) cache = { keys: first.keys!, values: first.values!, keyMask: mask, keyPositions: promptBatch.positions, length: L };
    for (;;) {
      options.onStepLogits?.(step, logits);
      const newIds = new Int32Array(B).fill(pad);
      const newMask = new Uint8Array(B);
      const newPos = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const { token, logProb } = sampleToken(logits.subarray(b * V, (b + 1) * V), params, rng);
        out[b].tokens.push(token);
        out[b].logProbs.push(logProb);
        newIds[b] = token;
        newMask[b] = 1;
        newPos[b] = nextPosition[b]++;
        if (stop.has(token)) {
          done[b] = true;
          out[b].finishReason = 'stop';
        }
      }
      step++;
      if (step >= options.maxNewTokens || done.every(Boolean)) break;
      if (useCache && cache) {
        const step = lastPositionLogits(model, { ids: newIds, batch: B, length: 1, mask: newMask, positions: newPos }, cache, true);
        const grown = appendCacheColumn(cache, { keys: step.keys!, values: step.values! }, newMask, newPos);
        disposeCache(cache);
        cache = grown;
        logits = step.logits;
      } else {
        // Recompute everything: append the new column and rerun the whole sequence.
        const T = length + 1;
        const ids2 = new Int32Array(B * T);
        const mask2 = new Uint8Array(B * T);
        for (let b = 0; b < B; b++) {
          ids2.set(ids.subarray(b * length, (b + 1) * length), b * T);
          mask2.set(mask.subarray(b * length, (b + 1) * length), b * T);
          ids2[b * T + length] = newIds[b];
          mask2[b * T + length] = newMask[b];
        }
        ids = ids2;
        mask = mask2;
        length = T;
        logits = lastPositionLogits(model, { ids, batch: B, length, mask, positions: positionsFromMask(mask, B, length) }, undefined, false).logits;
      }
    }
  } finally {
    disposeCache(cache);
  }
  return out;
}
