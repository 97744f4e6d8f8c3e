/**
 * Batched sampling with a KV cache.
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
import type { LlamaModel } from './llama-model';
import type { ForwardTokens, KvCache } from './transformer-forward';
import { forwardHidden, lmLogits, positionsFromMask } from './transformer-forward';

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

export interface SamplingParams {
  temperature: number;
  topK: number;
  topP: number;
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

/**
 * Draws one token from a row of logits. Returns the token and its log-prob under
 * softmax(logits / T) (T = 1 for greedy), computed in float64:
 * log p_i = z_i - m - log Σ_j exp(z_j - m) with z = logits / T and m = max z.
 */
export function sampleToken(logits: ArrayLike<number>, params: SamplingParams, rng: Rng): { token: number; logProb: number } {
  const V = logits.length;
  const T = params.temperature === 0 ? 1 : params.temperature;
  const z = new Float64Array(V);
  let m = -Infinity;
  for (let i = 0; i < V; i++) {
    z[i] = logits[i] / T;
    if (z[i] > m) m = z[i];
  }
  const e = new Float64Array(V); // exp(z - m), reused by the untruncated draw
  let sum = 0;
  for (let i = 0; i < V; i++) sum += e[i] = Math.exp(z[i] - m);
  const lse = m + Math.log(sum);
  if (params.temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (z[i] > z[best]) best = i;
    return { token: best, logProb: z[best] - lse };
  }
  // Candidates in descending probability; top-k then top-p (on the renormalised top-k set), as HF applies them.
  const truncate = params.topK > 0 || params.topP < 1;
  if (!truncate) {
    let u = rng.nextFloat() * sum;
    for (let i = 0; i < V; i++) {
      u -= e[i];
      if (u < 0) return { token: i, logProb: z[i] - lse };
    }
    return { token: V - 1, logProb: z[V - 1] - lse };
  }
  let order: number[] = candidatePrefix(z, m, lse, params);
  order.sort((a, b) => z[b] - z[a] || a - b);
  if (params.topK > 0 && params.topK < V) order = order.slice(0, params.topK);
  if (params.topP < 1) {
    // Mass of the set top-p renormalises over: the top-k set, or (no top-k) the whole vocabulary, not just the candidates.
    const topKActive = params.topK > 0 && params.topK < V;
    let mass = 0;
    if (topKActive) for (const i of order) mass += Math.exp(z[i] - lse);
    else for (let i = 0; i < V; i++) mass += Math.exp(z[i] - lse);
    let cum = 0;
    let keep = 0;
    while (keep < order.length) {
      cum += Math.exp(z[order[keep]] - lse) / mass;
      keep++;
      if (cum >= params.topP) break;
    }
    order = order.slice(0, keep);
  }
  let total = 0;
  for (const i of order) total += Math.exp(z[i] - m);
  let u = rng.nextFloat() * total;
  let token = order[order.length - 1];
  for (const i of order) {
    u -= Math.exp(z[i] - m);
    if (u < 0) {
      token = i;
      break;
    }
  }
  return { token, logProb: z[token] - lse };
}

/**
 * The tokens with z >= threshold, for the highest threshold at which they surely contain the result of
 * top-k (at least k of them) or top-p (their mass reaches p). They are a prefix of the descending order
 * (everything left out is strictly less likely), so sorting only them gives the same truncation as
 * sorting the whole vocabulary, which matters at 150k tokens.
 */
function candidatePrefix(z: Float64Array, m: number, lse: number, params: SamplingParams): number[] {
  const V = z.length;
  for (let drop = Math.log(1e3); drop < 700; drop += Math.log(1e3)) {
    const floor = m - drop;
    const picked: number[] = [];
    let mass = 0;
    for (let i = 0; i < V; i++) {
      if (z[i] >= floor) {
        picked.push(i);
        mass += Math.exp(z[i] - lse);
      }
    }
    if (params.topK > 0 ? picked.length >= Math.min(params.topK, V) : mass >= params.topP * (1 + 1e-9)) return picked; // margin: the nucleus compares against the summed total, ~1
  }
  return Array.from({ length: V }, (_, i) => i);
}

/** Next-token logits [B * V] at the last position of each row. */
function lastLogits(model: LlamaModel, tokens: ForwardTokens, past: KvCache | undefined, keepCache: boolean): { logits: Float32Array; keys?: tf.Tensor4D[]; values?: tf.Tensor4D[] } {
  const { batch: B, length: T } = tokens;
  const res = tf.tidy(() => {
    const out = forwardHidden(model, tokens, { past, returnCache: keepCache });
    const lastRows = tf.tensor1d(Array.from({ length: B }, (_, b) => b * T + T - 1), 'int32');
    const logits = lmLogits(model, tf.gather(out.hidden, lastRows)); // (B, D) x (D, V)
    return { logits, keys: out.keys, values: out.values };
  });
  const logits = res.logits.dataSync() as Float32Array;
  res.logits.dispose();
  return { logits: logits.slice(), keys: res.keys, values: res.values };
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
  const L = Math.max(...prompts.map((p) => p.length));

  // Left-padded prompt batch.
  let ids = new Int32Array(B * L).fill(pad);
  let mask = new Uint8Array(B * L);
  prompts.forEach((p, b) => {
    ids.set(p, b * L + L - p.length);
    mask.fill(1, b * L + L - p.length, (b + 1) * L);
  });
  let length = L;
  const positions = positionsFromMask(mask, B, L);
  const nextPosition = new Int32Array(prompts.map((p) => p.length));

  const out: Completion[] = prompts.map(() => ({ tokens: [], logProbs: [], finishReason: 'length' }));
  const done = new Array<boolean>(B).fill(false);
  let cache: KvCache | undefined;
  let step = 0;
  try {
    const first = lastLogits(model, { ids, batch: B, length: L, mask, positions }, undefined, useCache);
    let logits = first.logits;
    if (useCache) cache = { keys: first.keys!, values: first.values!, keyMask: mask, keyPositions: positions, length: L };
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
        const r = lastLogits(model, { ids: newIds, batch: B, length: 1, mask: newMask, positions: newPos }, cache, true);
        const keyMask = new Uint8Array(B * (cache.length + 1));
        const keyPositions = new Int32Array(B * (cache.length + 1));
        for (let b = 0; b < B; b++) {
          const K = cache.length;
          keyMask.set(cache.keyMask.subarray(b * K, (b + 1) * K), b * (K + 1));
          keyMask[b * (K + 1) + K] = newMask[b];
          keyPositions.set(cache.keyPositions.subarray(b * K, (b + 1) * K), b * (K + 1));
          keyPositions[b * (K + 1) + K] = newPos[b];
        }
        disposeCache(cache);
        cache = { keys: r.keys!, values: r.values!, keyMask, keyPositions, length: cache.length + 1 };
        logits = r.logits;
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
        logits = lastLogits(model, { ids, batch: B, length, mask, positions: positionsFromMask(mask, B, length) }, undefined, false).logits;
      }
    }
  } finally {
    disposeCache(cache);
  }
  return out;
}
