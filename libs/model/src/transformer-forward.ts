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
 * along the query axis so the keys/values are never repeated.
 *
 * Masks and positions are built on the host from the token layout (cheap: at
 * most B*T*K numbers) and enter as constants.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients; training through this model needs them.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { rmsNorm } from '@posttrain/backend'; // x·w/√(mean(x²)+eps); one fused kernel with the native kernels
import { batchMatMul, batchMatMulTransposeB, matMul2d } from './mat-mul';
import { embedTokens } from './embed-tokens';
import type { LlamaModel } from './llama-model';

/** Large negative additive mask: exp() of it underflows to exactly 0 next to any real score, and fully masked rows stay finite. */
const MASKED = -1e9;

/** The per-layer key/value cache, post-RoPE: [B, G, K, E] each, plus the host-side key layout. */
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
  /** Attend to these cached keys/values first (not modified). */
  past?: KvCache;
  /** Return the keys/values (past + new) so the caller can cache them. */
  returnCache?: boolean;
  /** Seed for LoRA dropout; dropout is applied only when this is given (training). */
  dropoutSeed?: number;
}

export interface ForwardResult {
  /** Final-norm hidden states [B*T, D]. */
  hidden: tf.Tensor2D;
  /** When returnCache: per layer [B, G, P+T, E]. */
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

const rotationCache = new Map<string, tf.Tensor2D>();

/**
 * HF's rotate_half as a matrix, so that rotate_half(x) = x·M:
 * rotate_half(x) = cat(-x[E/2:], x[:E/2]), i.e. M[j+E/2, j] = -1 and M[j, j+E/2] = 1 for j < E/2.
 * A product keeps us off slice/concat, which are slow on wasm, and its gradient is the transposed product.
 */
function rotateHalfMatrix(e: number): tf.Tensor2D {
  const key = `${tf.getBackend()}:${e}`;
  let m = rotationCache.get(key);
  if (!m || m.isDisposed) {
    const h = e / 2;
    const data = new Float32Array(e * e);
    for (let j = 0; j < h; j++) {
      data[(j + h) * e + j] = -1;
      data[j * e + j + h] = 1;
    }
    m = tf.keep(tf.tensor2d(data, [e, e]));
    rotationCache.set(key, m);
  }
  return m;
}

/** cos and sin tables [N, 1, E] for the given positions, HF layout: frequencies repeated twice (cat(freqs, freqs)). */
function ropeTables(positions: Int32Array, e: number, theta: number): { cos: tf.Tensor3D; sin: tf.Tensor3D } {
  const h = e / 2;
  const invFreq = new Float64Array(h);
  // HF: inv_freq = 1 / theta^(arange(0, E, 2) / E), computed in float32 there; the angle is pos * inv_freq.
  for (let j = 0; j < h; j++) invFreq[j] = Math.fround(1 / Math.pow(theta, (2 * j) / e));
  const n = positions.length;
  const cos = new Float32Array(n * e);
  const sin = new Float32Array(n * e);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < h; j++) {
      const angle = Math.fround(positions[i] * invFreq[j]);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[i * e + j] = c;
      cos[i * e + j + h] = c;
      sin[i * e + j] = s;
      sin[i * e + j + h] = s;
    }
  }
  return { cos: tf.tensor3d(cos, [n, 1, e]), sin: tf.tensor3d(sin, [n, 1, e]) };
}

/** x [N, heads, E] -> x*cos + rotate_half(x)*sin. */
function applyRope(x: tf.Tensor3D, cos: tf.Tensor3D, sin: tf.Tensor3D): tf.Tensor3D {
  const [n, heads, e] = x.shape;
  const rotated = tf.reshape(matMul2d(tf.reshape(x, [n * heads, e]), rotateHalfMatrix(e)), [n, heads, e]); // (N*heads, E) x (E, E)
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
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

/**
 * Additive attention mask [B, 1, 1, T, K] (broadcast over kv groups and the R query heads of a group):
 * query t of row b (key index P+t) may see key k when k is a real token, k <= P+t (causal), with
 * segment ids seg(key) = seg(query) (packed rows: block-diagonal causal), and, with a sliding window,
 * pos(query) - pos(key) < window. Segments come only without a cache (P = 0), so key k is token k.
 */
function attentionBias(tokens: ForwardTokens, keyMask: Uint8Array, keyPositions: Int32Array, keyLength: number, window: number | null): tf.Tensor {
  const { batch, length } = tokens;
  const past = keyLength - length;
  const seg = tokens.segmentIds;
  const out = new Float32Array(batch * length * keyLength);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < length; t++) {
      const qPos = tokens.positions[b * length + t];
      const qSeg = seg ? seg[b * length + t] : 0;
      const row = (b * length + t) * keyLength;
      for (let k = 0; k < keyLength; k++) {
        const visible =
          keyMask[b * keyLength + k] === 1 &&
          k <= past + t &&
          (seg === undefined || seg[b * length + k] === qSeg) &&
          (window === null || qPos - keyPositions[b * keyLength + k] < window);
        out[row + k] = visible ? 0 : MASKED;
      }
    }
  }
  return tf.tensor(out, [batch, 1, 1, length, keyLength]);
}

/** Runs the decoder; call inside tf.tidy (or tf.variableGrads). */
export function forwardHidden(model: LlamaModel, tokens: ForwardTokens, options: ForwardOptions = {}): ForwardResult {
  const c = model.config;
  const { batch: B, length: T } = tokens;
  const N = B * T;
  const H = c.numHeads;
  const G = c.numKvHeads;
  const R = H / G;
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
  const keysOut: tf.Tensor4D[] = [];
  const valuesOut: tf.Tensor4D[] = [];

  let h = embedTokens(model.weight('model.embed_tokens.weight') as tf.Tensor2D, tokens.ids); // (N, D)
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    // --- attention ---
    const x = rmsNorm(h, model.weight(`${p}.input_layernorm.weight`) as tf.Tensor1D, c.rmsNormEps);
    let qHeads = projection(model, `${p}.self_attn.q_proj`, x, seed); // (N, H*E)
    let kHeads = projection(model, `${p}.self_attn.k_proj`, x, seed); // (N, G*E)
    if (c.qkNorm) {
      // Qwen3: each head's q and k RMS-normalised over the head dimension, before RoPE.
      qHeads = rmsNorm(tf.reshape(qHeads, [N * H, E]), model.weight(`${p}.self_attn.q_norm.weight`) as tf.Tensor1D, c.rmsNormEps); // (N*H, E)
      kHeads = rmsNorm(tf.reshape(kHeads, [N * G, E]), model.weight(`${p}.self_attn.k_norm.weight`) as tf.Tensor1D, c.rmsNormEps); // (N*G, E)
    }
    const q = applyRope(tf.reshape(qHeads, [N, H, E]), cos, sin); // (N, H, E)
    const k = applyRope(tf.reshape(kHeads, [N, G, E]), cos, sin); // (N, G, E)
    const v = projection(model, `${p}.self_attn.v_proj`, x, seed); // (N, G*E)
    let k4 = tf.transpose(tf.reshape(k, [B, T, G, E]), [0, 2, 1, 3]) as tf.Tensor4D; // (B, G, T, E)
    let v4 = tf.transpose(tf.reshape(v, [B, T, G, E]), [0, 2, 1, 3]) as tf.Tensor4D; // (B, G, T, E)
    if (past) {
      k4 = tf.concat([past.keys[l], k4], 2); // (B, G, K, E)
      v4 = tf.concat([past.values[l], v4], 2);
    }
    if (options.returnCache) {
      keysOut.push(k4);
      valuesOut.push(v4);
    }
    // Query head h = g*R + r uses kv head g (HF repeat_kv), so (B, H, T, E) regroups as (B*G, R*T, E).
    const q3 = tf.reshape(tf.transpose(tf.reshape(q, [B, T, H, E]), [0, 2, 1, 3]), [B * G, R * T, E]) as tf.Tensor3D;
    const k3 = tf.reshape(k4, [B * G, K, E]) as tf.Tensor3D; // (B*G, K, E)
    const scores = tf.reshape(batchMatMulTransposeB(q3, k3), [B, G, R, T, K]); // (B*G, R*T, E) x (B*G, K, E)ᵀ -> (B, G, R, T, K)
    const probs = tf.reshape(tf.softmax(tf.add(tf.mul(scores, scale), bias)), [B * G, R * T, K]) as tf.Tensor3D;
    const att = batchMatMul(probs, tf.reshape(v4, [B * G, K, E]) as tf.Tensor3D); // (B*G, R*T, K) x (B*G, K, E) -> (B*G, R*T, E)
    const merged = tf.reshape(tf.transpose(tf.reshape(att, [B, H, T, E]), [0, 2, 1, 3]), [N, H * E]) as tf.Tensor2D; // (N, H*E)
    h = tf.add(h, projection(model, `${p}.self_attn.o_proj`, merged, seed));
    // --- MLP (SwiGLU) ---
    const y = rmsNorm(h, model.weight(`${p}.post_attention_layernorm.weight`) as tf.Tensor1D, c.rmsNormEps);
    const gate = projection(model, `${p}.mlp.gate_proj`, y, seed); // (N, I)
    const up = projection(model, `${p}.mlp.up_proj`, y, seed); // (N, I)
    const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up); // silu(gate) * up
    h = tf.add(h, projection(model, `${p}.mlp.down_proj`, act as tf.Tensor2D, seed));
  }
  const hidden = rmsNorm(h, model.weight('model.norm.weight') as tf.Tensor1D, c.rmsNormEps);
  return options.returnCache ? { hidden, keys: keysOut, values: valuesOut } : { hidden };
}

/** Next-token logits [N, V] from final hidden states [N, D]. */
export function lmLogits(model: LlamaModel, hidden: tf.Tensor2D): tf.Tensor2D {
  if (!model.heads.lm) throw new Error('this model has no LM head (it is a sequence-classification model)');
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
