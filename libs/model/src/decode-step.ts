/**
 * One decoding step of batched KV-cache generation, shared by `generate` and
 * the serving engine (@posttrain/serving): left-padding prompts into a batch,
 * the forward pass that yields each row's next-token logits, the cache grown
 * by the step's column, and drawing the next token from a row of logits.
 *
 * Rows are left-padded, so the last position of every row is a real token
 * (or, in `generate`'s no-cache path, a masked column of a finished row whose
 * logits nobody reads); rotary positions count real tokens only.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@posttrain/random';
import type { LlamaModel } from './llama-model';
import type { ForwardTokens, KvCache } from './transformer-forward';
import { forwardHidden, lmLogits, positionsFromMask } from './transformer-forward';

export interface SamplingParams {
  temperature: number;
  topK: number;
  topP: number;
}

/** Prompts left-padded into one [B, L] batch (padding ids `padTokenId`, masked), positions counting real tokens. */
export function leftPadPrompts(prompts: readonly (readonly number[])[], padTokenId: number): ForwardTokens & { mask: Uint8Array; positions: Int32Array } {
  const batch = prompts.length;
  const length = Math.max(...prompts.map((p) => p.length));
  const ids = new Int32Array(batch * length).fill(padTokenId);
  const mask = new Uint8Array(batch * length);
  prompts.forEach((prompt, row) => {
    ids.set(prompt, row * length + length - prompt.length);
    mask.fill(1, row * length + length - prompt.length, (row + 1) * length);
  });
  return { ids, batch, length, mask, positions: positionsFromMask(mask, batch, length) };
}

/**
 * Forward pass of `tokens` (after `past` when given): the next-token logits
 * [B * V] at the last position of each row and, with `keepCache`, the keys
 * and values of the whole sequence.
 */
export function lastPositionLogits(model: LlamaModel, tokens: ForwardTokens, past: KvCache | undefined, keepCache: boolean): { logits: Float32Array; keys?: tf.Tensor4D[]; values?: tf.Tensor4D[] } {
  const { batch: rows, length } = tokens;
  const result = tf.tidy(() => {
    const out = forwardHidden(model, tokens, { past, returnCache: keepCache });
    // A strided slice of the last position is far cheaper than a gather on wasm.
    const width = out.hidden.shape[1];
    const last = length === 1 ? out.hidden : tf.reshape(tf.slice(tf.reshape(out.hidden, [rows, length, width]), [0, length - 1, 0], [rows, 1, width]), [rows, width]); // (B, D)
    return { logits: lmLogits(model, last as tf.Tensor2D, { inference: true }), keys: out.keys, values: out.values }; // (B, D) x (D, V)
  });
  const logits = (result.logits.dataSync() as Float32Array).slice();
  result.logits.dispose();
  return { logits, keys: result.keys, values: result.values };
}

/**
 * The cache after a one-token step: the step's keys and values (which already
 * hold the old columns) with the old key mask and positions extended by the
 * step's column. The old cache's tensors are not disposed here; they may share
 * buffers with the step's (decoding writes the new column in place, past the
 * old length), but each cache holds its own tensors, so disposing the old one
 * afterwards is safe and leaves the new one intact.
 */
export function appendCacheColumn(cache: KvCache, step: { keys: tf.Tensor4D[]; values: tf.Tensor4D[] }, columnMask: Uint8Array, columnPositions: Int32Array): KvCache {
  const rows = columnMask.length;
  const oldLength = cache.length;
  const newLength = oldLength + 1;
  const keyMask = new Uint8Array(rows * newLength);
  const keyPositions = new Int32Array(rows * newLength);
  for (let row = 0; row < rows; row++) {
    keyMask.set(cache.keyMask.subarray(row * oldLength, (row + 1) * oldLength), row * newLength);
    keyMask[row * newLength + oldLength] = columnMask[row];
    keyPositions.set(cache.keyPositions.subarray(row * oldLength, (row + 1) * oldLength), row * newLength);
    keyPositions[row * newLength + oldLength] = columnPositions[row];
  }
  return { keys: step.keys, values: step.values, keyMask, keyPositions, length: newLength };
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
