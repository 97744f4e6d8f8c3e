/**
 * The attention block's pieces shared by the forward pass (transformer-forward.ts)
 * and the fused decoding step (decode-attention.ts): rotary tables and their
 * application, the additive mask, and grouped-query attention in tfjs ops.
 * Shapes as in transformer-forward.ts: B rows, T new tokens, P cached ones,
 * K = P + T keys, H query heads, G kv heads, R = H / G, E head_dim, N = B*T.
 */
import * as tf from '@tensorflow/tfjs-core';
import { batchMatMul, batchMatMulTransposeB, matMul2d } from './mat-mul';
import type { ForwardTokens } from './transformer-forward';

/** Large negative additive mask: exp() of it underflows to exactly 0 next to any real score, and fully masked rows stay finite. */
export const MASKED = -1e9;

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
export function ropeTables(positions: Int32Array, e: number, theta: number): { cos: tf.Tensor3D; sin: tf.Tensor3D } {
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

/**
 * Additive attention mask [B, 1, 1, T, K] (broadcast over kv groups and the R query heads of a group):
 * query t of row b (key index P+t) may see key k when k is a real token, k <= P+t (causal), with
 * segment ids seg(key) = seg(query) (packed rows: block-diagonal causal), and, with a sliding window,
 * pos(query) - pos(key) < window. Segments come only without a cache (P = 0), so key k is token k.
 */
export function attentionBias(tokens: ForwardTokens, keyMask: Uint8Array, keyPositions: Int32Array, keyLength: number, window: number | null): tf.Tensor {
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

/** Attention sizes: B rows of T new tokens, H query heads, G kv heads, head_dim E. */
export interface AttentionDims {
  B: number;
  T: number;
  H: number;
  G: number;
  E: number;
}

/** A layer's cached keys and values: [B, G, C, E] with C >= length; the first `length` columns are the cache. */
export interface PastColumns {
  keys: tf.Tensor4D;
  values: tf.Tensor4D;
  length: number;
}

/**
 * The first `length` key columns of a cache tensor [B, G, C, E]: the tensor itself when C = length,
 * else a copy (decoding leaves spare columns past the cache's length; see decode-attention.ts).
 */
export function cacheColumns(t: tf.Tensor4D, length: number): tf.Tensor4D {
  const [b, g, c, e] = t.shape;
  if (!Number.isInteger(length) || length < 0 || length > c) throw new Error(`cacheColumns: length ${length} is outside the tensor's ${c} key columns`);
  return c === length ? t : (tf.slice(t, [0, 0, 0, 0], [b, g, length, e]) as tf.Tensor4D);
}

/**
 * One layer's attention in tfjs ops: q2 [N, H*E], k2 and v2 [N, G*E] (or [N*H, E], [N*G, E]; projected, q/k normalised, before
 * RoPE) attend, under the additive `bias` [B, 1, 1, T, K], to the past's keys/values followed by their
 * own. Returns out [N, H*E] (heads merged, ready for o_proj) and the keys/values [B, G, K, E] (post-RoPE).
 */
export function groupedAttention(q2: tf.Tensor2D, k2: tf.Tensor2D, v2: tf.Tensor2D, rope: { cos: tf.Tensor3D; sin: tf.Tensor3D }, past: PastColumns | undefined,
  bias: tf.Tensor, d: AttentionDims, scale: number): { out: tf.Tensor2D; keys: tf.Tensor4D; values: tf.Tensor4D } {
  const { B, T, H, G, E } = d;
  const N = B * T;
  const R = H / G;
  const q = applyRope(tf.reshape(q2, [N, H, E]), rope.cos, rope.sin); // (N, H, E)
  const k = applyRope(tf.reshape(k2, [N, G, E]), rope.cos, rope.sin); // (N, G, E)
  let k4 = tf.transpose(tf.reshape(k, [B, T, G, E]), [0, 2, 1, 3]) as tf.Tensor4D; // (B, G, T, E)
  let v4 = tf.transpose(tf.reshape(v2, [B, T, G, E]), [0, 2, 1, 3]) as tf.Tensor4D; // (B, G, T, E)
  if (past) {
    k4 = tf.concat([cacheColumns(past.keys, past.length), k4], 2); // (B, G, K, E)
    v4 = tf.concat([cacheColumns(past.values, past.length), v4], 2);
  }
  const K = k4.shape[2];
  // Query head h = g*R + r uses kv head g (HF repeat_kv), so (B, H, T, E) regroups as (B*G, R*T, E).
  const q3 = tf.reshape(tf.transpose(tf.reshape(q, [B, T, H, E]), [0, 2, 1, 3]), [B * G, R * T, E]) as tf.Tensor3D;
  const k3 = tf.reshape(k4, [B * G, K, E]) as tf.Tensor3D; // (B*G, K, E)
  const scores = tf.reshape(batchMatMulTransposeB(q3, k3), [B, G, R, T, K]); // (B*G, R*T, E) x (B*G, K, E)ᵀ -> (B, G, R, T, K)
  const probs = tf.reshape(tf.softmax(tf.add(tf.mul(scores, scale), bias)), [B * G, R * T, K]) as tf.Tensor3D;
  const att = batchMatMul(probs, tf.reshape(v4, [B * G, K, E]) as tf.Tensor3D); // (B*G, R*T, K) x (B*G, K, E) -> (B*G, R*T, E)
  const out = tf.reshape(tf.transpose(tf.reshape(att, [B, H, T, E]), [0, 2, 1, 3]), [N, H * E]) as tf.Tensor2D; // (N, H*E)
  return { out, keys: k4, values: v4 };
}
