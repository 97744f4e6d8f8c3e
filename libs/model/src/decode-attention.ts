/**
 * A decoding step's attention (one new token per row after a KV cache): with
 * the native kernels on wasm, one fused kernel per layer (RoPE, the cache
 * written in place at the step's column, q·Kᵀ, mask, softmax, ·V, all heads)
 * instead of some forty tfjs kernels; elsewhere `groupedAttention`'s tfjs ops,
 * which grow the cache by concatenation.
 *
 * In-place growth: a cache tensor [B, G, C, E] may have spare columns past the
 * cache's length (capacity C). The step writes its column there when no other
 * step has written that column of the same buffer before; every cache (old or
 * new) keeps its own tensor object over the shared buffer (a reshape view), so
 * each can be disposed on its own, and an old cache's columns never change.
 * Otherwise (no spare column, or a column already taken: a second step from the
 * same old cache) the step copies the cache into a larger buffer first, so
 * branching from an old cache stays correct, only slower.
 */
import * as tf from '@tensorflow/tfjs-core';
import { decodeAttentionNative, nativeKernelsActive } from '@posttrain/backend';
import { cacheColumns, groupedAttention, type AttentionDims, type PastColumns } from './attention';

/**
 * Per buffer (tfjs data id, shared by reshape views), how many leading columns
 * a decoding step has written: only the step that continues from exactly that
 * length may write the next column in place.
 */
const written = new WeakMap<object, number>();

/** Spare columns a grown buffer gets: at least 32, and half the length, so copies are rare and at most a third of the buffer sits unused. */
export function grownCapacity(length: number): number {
  return length + Math.max(32, Math.ceil(length / 2));
}

/** A buffer whose column `length` the step may write: `t` itself when it is free, else a copy of the first `length` columns with spare room. */
function writableBuffer(t: tf.Tensor4D, length: number): tf.Tensor4D {
  const [b, g, c, e] = t.shape;
  if (c > length && written.get(t.dataId) === length) return t;
  const capacity = grownCapacity(length);
  if (length === 0) return tf.zeros([b, g, capacity, e]);
  return tf.pad(cacheColumns(t, length), [[0, 0], [0, 0], [0, capacity - length], [0, 0]]);
}

/**
 * One layer's attention for a step of one token per row (d.T = 1): q2 [B, H*E], k2 and v2 [B, G*E]
 * (projected, q/k normalised, before RoPE), rope tables [B, 1, E], the additive bias [B, 1, 1, 1, P+1].
 * Returns out [B, H*E] and the layer's new cache tensors, whose first P+1 columns are the past's
 * followed by this step's (post-RoPE) key and value. Call inside tf.tidy.
 */
export function decodeStepAttention(q2: tf.Tensor2D, k2: tf.Tensor2D, v2: tf.Tensor2D, rope: { cos: tf.Tensor3D; sin: tf.Tensor3D }, past: PastColumns,
  bias: tf.Tensor, d: AttentionDims, scale: number): { out: tf.Tensor2D; keys: tf.Tensor4D; values: tf.Tensor4D } {
  if (d.T !== 1) throw new Error(`decodeStepAttention: a decoding step has one token per row, got ${d.T}`);
  if (!nativeKernelsActive()) return groupedAttention(q2, k2, v2, rope, past, bias, d, scale);
  const column = past.length;
  const keys = writableBuffer(past.keys, column);
  const values = writableBuffer(past.values, column);
  const out = decodeAttentionNative({ q: q2, k: k2, v: v2, cos: rope.cos, sin: rope.sin, keys, values, bias }, { column, heads: d.H, scale });
  written.set(keys.dataId, column + 1);
  written.set(values.dataId, column + 1);
  // A view of a buffer the past also holds, so that either cache may be disposed first.
  const own = (buffer: tf.Tensor4D, old: tf.Tensor4D) => (buffer === old ? (tf.reshape(buffer, buffer.shape) as tf.Tensor4D) : buffer);
  return { out, keys: own(keys, past.keys), values: own(values, past.values) };
}
