/**
 * The KV cache of a running batch (the model's KvCache; rows follow the
 * engine's running sequences) and the two ways its rows change between
 * decoding steps: sequences joining (mergeCaches) and leaving (selectRows).
 */
import * as tf from '@tensorflow/tfjs-core';
import { cacheColumns, type KvCache } from '@posttrain/model';

export type BatchCache = KvCache;

export function disposeCache(c: BatchCache | null): void {
  if (c) tf.dispose([...c.keys, ...c.values]);
}

/** Left-pads both caches to a common key length and stacks their rows (a's rows first). */
export function mergeCaches(a: BatchCache, rowsA: number, b: BatchCache, rowsB: number): BatchCache {
  const K = Math.max(a.length, b.length);
  const padA = K - a.length;
  const padB = K - b.length;
  const stack = (x: tf.Tensor4D, y: tf.Tensor4D) =>
    tf.tidy(() => {
      // Only the first `length` columns are the cache (decoding leaves spare ones past it).
      const [cx, cy] = [cacheColumns(x, a.length), cacheColumns(y, b.length)];
      const px = padA > 0 ? tf.pad(cx, [[0, 0], [0, 0], [padA, 0], [0, 0]]) : cx; // (rowsA, G, K, E)
      const py = padB > 0 ? tf.pad(cy, [[0, 0], [0, 0], [padB, 0], [0, 0]]) : cy; // (rowsB, G, K, E)
      return tf.concat([px, py], 0) as tf.Tensor4D; // (rowsA + rowsB, G, K, E)
    });
  const keyMask = new Uint8Array((rowsA + rowsB) * K);
  const keyPositions = new Int32Array((rowsA + rowsB) * K);
  for (let r = 0; r < rowsA; r++) {
    keyMask.set(a.keyMask.subarray(r * a.length, (r + 1) * a.length), r * K + padA);
    keyPositions.set(a.keyPositions.subarray(r * a.length, (r + 1) * a.length), r * K + padA);
  }
  for (let r = 0; r < rowsB; r++) {
    keyMask.set(b.keyMask.subarray(r * b.length, (r + 1) * b.length), (rowsA + r) * K + padB);
    keyPositions.set(b.keyPositions.subarray(r * b.length, (r + 1) * b.length), (rowsA + r) * K + padB);
  }
  return {
    keys: a.keys.map((k, l) => stack(k, b.keys[l])),
    values: a.values.map((v, l) => stack(v, b.values[l])),
    keyMask,
    keyPositions,
    length: K,
  };
}

/** Maximal runs of consecutive row indices, in order: [3, 4, 5, 9, 1] -> [[3, 3], [9, 1], [1, 1]] as [start, count]. */
function rowRuns(rows: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const r of rows) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === r) last[1]++;
    else runs.push([r, 1]);
  }
  return runs;
}

/**
 * The given rows of a cache (in the given order), without the leading key
 * columns that are padding in every kept row. Rows are copied as contiguous
 * runs with slice + concat: on wasm a gather along the batch axis is about ten
 * times slower than that, and retiring one row keeps at most two runs.
 */
export function selectRows(c: BatchCache, rows: number[]): BatchCache {
  const K = c.length;
  const B = c.keyMask.length / K;
  for (const r of rows) {
    if (!Number.isInteger(r) || r < 0 || r >= B) throw new RangeError(`selectRows: row ${r} is outside the cache's ${B} rows`);
  }
  let first = K;
  for (const r of rows) {
    for (let k = 0; k < Math.min(first, K); k++) {
      if (c.keyMask[r * K + k]) {
        first = k;
        break;
      }
    }
  }
  if (first === K) first = 0;
  const K2 = K - first;
  const runs = rowRuns(rows);
  const pick = (t: tf.Tensor4D) =>
    tf.tidy(() => {
      const parts = runs.map(([start, count]) => tf.slice(t, [start, 0, first, 0], [count, -1, K2, -1]) as tf.Tensor4D); // (count, G, K2, E)
      return parts.length === 1 ? parts[0] : (tf.concat(parts, 0) as tf.Tensor4D); // (rows, G, K2, E)
    });
  const keys = c.keys.map(pick);
  const values = c.values.map(pick);
  const keyMask = new Uint8Array(rows.length * K2);
  const keyPositions = new Int32Array(rows.length * K2);
  rows.forEach((r, i) => {
    keyMask.set(c.keyMask.subarray(r * K + first, (r + 1) * K), i * K2);
    keyPositions.set(c.keyPositions.subarray(r * K + first, (r + 1) * K), i * K2);
  });
  return { keys, values, keyMask, keyPositions, length: K2 };
}
