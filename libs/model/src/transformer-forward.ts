/**
 * The Llama-family decoder forward pass (pre-norm residual blocks):
 *
 *   h = embed(ids)
 *   for each layer:  h = h + attn(rmsnorm(h))        (RoPE on q/k, GQA, causal + padding (+ segment) mask;
 *                                                     Qwen3 first RMS-normalises each q/k head over head_dim)
 *                    h = h + mlp(rmsnorm(h))         (down(silu(gate(x)) * up(x)))
 *   h = rmsnorm(h)
 *
 * Shapes: B batch rows, T new tokens, P cached (past) tokens, K = P + T keys,
 * D hidden, H query heads, G = num_kv_heads, R = H / G, E head_dim, N = B*T.
 * All projections are 2-D products [N, D]·[D, out]; attention runs per kv-head
 * group as batched products over B*G, the R query heads of a group stacked
 * along the query axis so the keys/values are never repeated (attention.ts).
 * A decoding step (one token per row after a cache) runs one fused attention
 * kernel per layer where the native kernels run (decode-attention.ts).
 *
 * Masks and positions are built on the host from the token layout (cheap: at
 * most B*T*K numbers) and enter as constants.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients; training through this model needs them.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { nativeKernelsActive, rmsNorm, swiGluInference } from '@posttrain/backend'; // rmsNorm: x·w/√(mean(x²)+eps); both one fused kernel with the native kernels
import { matMul2d } from './mat-mul';
import { embedTokens } from './embed-tokens';
import type { LlamaModel } from './llama-model';
import { attentionBias, groupedAttention, ropeTables } from './attention';
import { decodeStepAttention } from './decode-attention';

/**
 * The per-layer key/value cache, post-RoPE, plus the host-side key layout. Each tensor is
 * [B, G, C, E] with C >= length: the first `length` key columns are the cache; decoding steps
 * write their column into spare ones in place (decode-attention.ts), so read a cache through
 * `cacheColumns(t, length)`.
 */
export interface KvCache {
  keys: tf.Tensor4D[];
  values: tf.Tensor4D[];
  /** [B * K]: 1 for a real key, 0 for padding. */
  keyMask: Uint8Array;
  /** [B * K]: the rotary position of each key. */
  keyPositions: Int32Array;
  length: number;
}

/**
 * One forward call's tokens: B rows of T new tokens, with their padding mask and rotary positions,
 * and for packed rows (several examples per row) the example each token belongs to.
 */
export interface ForwardTokens {
  ids: Int32Array;
  batch: number;
  length: number;
  /** [B * T]: 1 for a real token, 0 for padding. */
  mask: Uint8Array;
  /** [B * T]. For packed rows these restart at 0 for each example (see positionsFromSegments). */
  positions: Int32Array;
  /**
   * [B * T], optional: the packed example (segment) of each token. A query attends only to keys of
   * its own segment (block-diagonal causal attention), so examples packed into one row do not see
   * each other. Not supported together with a KV cache (generation never packs).
   */
  segmentIds?: Int32Array;
}

export interface ForwardOptions {
  /**
   * Attend to these cached keys/values first (its first `length` columns are never modified).
   * A forward that reads or returns a cache is for generation: it runs inference-only fused
   * kernels (no gradients), and a one-token step may extend the cache's buffers in place.
   */
  past?: KvCache;
  /** Return the keys/values (past + new) so the caller can cache them. */
  returnCache?: boolean;
  /** Seed for LoRA dropout; dropout is applied only when this is given (training). */
  dropoutSeed?: number;
}

export interface ForwardResult {
  /** Final-norm hidden states [B*T, D]. */
  hidden: tf.Tensor2D;
  /** When returnCache: per layer [B, G, C, E], the first P+T columns the cache (C > P+T after an in-place decoding step). */
  keys?: tf.Tensor4D[];
  values?: tf.Tensor4D[];
}

/** Rotary positions from a padding mask: each real token's index among its row's real tokens; padding gets 0. */
export function positionsFromMask(mask: Uint8Array, batch: number, length: number, start?: Int32Array): Int32Array {
  const pos = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    let p = start ? start[b] : 0;
    for (let t = 0; t < length; t++) {
      const i = b * length + t;
      if (mask[i]) pos[i] = p++;
    }
  }
  return pos;
}

/**
 * Rotary positions for packed rows: each real token's index among the earlier real tokens of its own
 * segment in its row, so positions restart at 0 for every packed example; padding gets 0.
 */
export function positionsFromSegments(mask: Uint8Array, segmentIds: Int32Array, batch: number, length: number): Int32Array {
  const pos = new Int32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    const next = new Map<number, number>();
    for (let t = 0; t < length; t++) {
      const i = b * length + t;
      if (!mask[i]) continue;
      const p = next.get(segmentIds[i]) ?? 0;
      pos[i] = p;
      next.set(segmentIds[i], p + 1);
    }
  }
  return pos;
}

/** A small deterministic hash so each projection draws its own dropout mask from one step seed. */
function nameHash(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name.charCodeAt(i)) % 1000003;
  return h;
}

/** x [N, in] · W [in, out] (+ bias) (+ LoRA: dropout(x)·A·B · alpha/r). `name` is the HF prefix, e.g. model.layers.0.mlp.up_proj. */
function projection(model: LlamaModel, name: string, x: tf.Tensor2D, dropoutSeed?: number): tf.Tensor2D {
  let y = matMul2d(x, model.weight(`${name}.weight`) as tf.Tensor2D);
  const bias = model.weights.get(`${name}.bias`);
  if (bias) y = tf.add(y, bias);
  const adapter = model.lora?.adapters.get(name);
  if (adapter && model.lora) {
    const { r, alpha, dropout } = model.lora.settings;
    const input = dropout > 0 && dropoutSeed !== undefined ? (tf.dropout(x, dropout, undefined, dropoutSeed * 7919 + nameHash(name)) as tf.Tensor2D) : x;
    const delta = matMul2d(matMul2d(input, adapter.a as tf.Tensor2D), adapter.b as tf.Tensor2D); // (N, in) x (in, r) x (r, out)
    y = tf.add(y, tf.mul(delta, alpha / r));
  }
  return y;
}

/** Runs the decoder; call inside tf.tidy (or tf.variableGrads). */
export function forwardHidden(model: LlamaModel, tokens: ForwardTokens, options: ForwardOptions = {}): ForwardResult {
  const c = model.config;
  const { batch: B, length: T } = tokens;
  const N = B * T;
  const H = c.numHeads;
  const G = c.numKvHeads;
  const E = c.headDim;
  const past = options.past;
  const P = past ? past.length : 0;
  const K = P + T;
  if (tokens.ids.length !== N || tokens.mask.length !== N || tokens.positions.length !== N) {
    throw new Error(`forward: ids/mask/positions must have B*T = ${N} entries`);
  }
  if (tokens.segmentIds !== undefined) {
    if (tokens.segmentIds.length !== N) throw new Error(`forward: segmentIds must have B*T = ${N} entries, got ${tokens.segmentIds.length}`);
    if (past) throw new Error('forward: segmentIds (packed rows) cannot be combined with a KV cache (past)');
  }
  if (past && (past.keys.length !== c.numLayers || past.keyMask.length !== B * P)) {
    throw new Error(`forward: cache holds ${past.keys.length} layers and ${past.keyMask.length} key slots, expected ${c.numLayers} and ${B * P}`);
  }
  for (let i = 0; i < N; i++) {
    if (tokens.ids[i] < 0 || tokens.ids[i] >= c.vocabSize) throw new Error(`forward: token id ${tokens.ids[i]} at flat index ${i} is outside [0, ${c.vocabSize})`);
  }
  const keyMask = new Uint8Array(B * K);
  const keyPositions = new Int32Array(B * K);
  for (let b = 0; b < B; b++) {
    if (past) {
      keyMask.set(past.keyMask.subarray(b * P, (b + 1) * P), b * K);
      keyPositions.set(past.keyPositions.subarray(b * P, (b + 1) * P), b * K);
    }
    keyMask.set(tokens.mask.subarray(b * T, (b + 1) * T), b * K + P);
    keyPositions.set(tokens.positions.subarray(b * T, (b + 1) * T), b * K + P);
  }
  const bias = attentionBias(tokens, keyMask, keyPositions, K, c.slidingWindow);
  const { cos, sin } = ropeTables(tokens.positions, E, c.ropeTheta);
  const scale = 1 / Math.sqrt(E);
  const seed = options.dropoutSeed;
  // Generation (a cache read or returned) never differentiates: it may take kernels that have no gradient.
  const inference = past !== undefined || options.returnCache === true;
  const dims = { B, T, H, G, E };
  const keysOut: tf.Tensor4D[] = [];
  const valuesOut: tf.Tensor4D[] = [];

  let h = embedTokens(model.weight('model.embed_tokens.weight') as tf.Tensor2D, tokens.ids); // (N, D)
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    // --- attention ---
    const x = rmsNorm(h, model.weight(`${p}.input_layernorm.weight`) as tf.Tensor1D, c.rmsNormEps);
    let qHeads = projection(model, `${p}.self_attn.q_proj`, x, seed); // (N, H*E); any 2-D layout of N*H*E values will do below
    let kHeads = projection(model, `${p}.self_attn.k_proj`, x, seed); // (N, G*E)
    if (c.qkNorm) {
      // Qwen3: each head's q and k RMS-normalised over the head dimension, before RoPE.
      qHeads = rmsNorm(tf.reshape(qHeads, [N * H, E]), model.weight(`${p}.self_attn.q_norm.weight`) as tf.Tensor1D, c.rmsNormEps); // (N*H, E)
      kHeads = rmsNorm(tf.reshape(kHeads, [N * G, E]), model.weight(`${p}.self_attn.k_norm.weight`) as tf.Tensor1D, c.rmsNormEps); // (N*G, E)
    }
    const v = projection(model, `${p}.self_attn.v_proj`, x, seed); // (N, G*E)
    const layerPast = past && { keys: past.keys[l], values: past.values[l], length: P };
    const attention = layerPast && T === 1
      ? decodeStepAttention(qHeads, kHeads, v, { cos, sin }, layerPast, bias, dims, scale)
      : groupedAttention(qHeads, kHeads, v, { cos, sin }, layerPast, bias, dims, scale); // (N, H*E); keys/values (B, G, K, E)
    if (options.returnCache) {
      keysOut.push(attention.keys);
      valuesOut.push(attention.values);
    }
    h = tf.add(h, projection(model, `${p}.self_attn.o_proj`, attention.out, seed));
    // --- MLP (SwiGLU) ---
    const y = rmsNorm(h, model.weight(`${p}.post_attention_layernorm.weight`) as tf.Tensor1D, c.rmsNormEps);
    const gate = projection(model, `${p}.mlp.gate_proj`, y, seed); // (N, I)
    const up = projection(model, `${p}.mlp.up_proj`, y, seed); // (N, I)
    const act = inference ? swiGluInference(gate, up) : tf.mul(tf.mul(gate, tf.sigmoid(gate)), up); // silu(gate) * up
    h = tf.add(h, projection(model, `${p}.mlp.down_proj`, act as tf.Tensor2D, seed));
  }
  const hidden = rmsNorm(h, model.weight('model.norm.weight') as tf.Tensor1D, c.rmsNormEps);
  return options.returnCache ? { hidden, keys: keysOut, values: valuesOut } : { hidden };
}

/**
 * Next-token logits [N, V] from final hidden states [N, D]. `inference` (no gradient needed): with the native
 * kernels a tied head multiplies by the embedding with BLAS's transpose flag instead of copying its transpose.
 */
export function lmLogits(model: LlamaModel, hidden: tf.Tensor2D, options: { inference?: boolean } = {}): tf.Tensor2D {
  if (!model.heads.lm) throw new Error('this model has no LM head (it is a sequence-classification model)');
  if (options.inference && model.config.tieWordEmbeddings && nativeKernelsActive()) {
    return tf.matMul(hidden, model.weight('model.embed_tokens.weight'), false, true) as tf.Tensor2D; // (N, D) x (V, D)ᵀ
  }
  const head = model.config.tieWordEmbeddings
    ? (tf.transpose(model.weight('model.embed_tokens.weight')) as tf.Tensor2D) // (D, V), explicit transpose: see mat-mul.ts
    : (model.weight('lm_head.weight') as tf.Tensor2D);
  return matMul2d(hidden, head); // (N, D) x (D, V)
}

/** Scalar head outputs [N] from final hidden states [N, D]. */
export function scoreHeadValues(model: LlamaModel, hidden: tf.Tensor2D): tf.Tensor1D {
  if (!model.heads.score) throw new Error('this model has no score head (score.weight)');
  return tf.reshape(matMul2d(hidden, model.weight('score.weight') as tf.Tensor2D), [-1]) as tf.Tensor1D; // (N, D) x (D, 1)
}
