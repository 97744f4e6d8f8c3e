import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { KvCache } from '@posttrain/model';
import { mergeCaches, selectRows } from './batch-cache';
import { useCpuBackend } from './test-support';

before(useCpuBackend);

/** A cache of `rows` rows, `layers` layers, G=2 kv heads, E=3, key length K; entry values encode (layer, kind, row, g, k, e) so every copy is checkable. */
function makeCache(rows: number, K: number, leadingPad: number[], layers = 2): KvCache {
  const G = 2;
  const E = 3;
  const fill = (l: number, kind: number) => {
    const data = new Float32Array(rows * G * K * E);
    for (let r = 0; r < rows; r++) for (let g = 0; g < G; g++) for (let k = 0; k < K; k++) for (let e = 0; e < E; e++) data[((r * G + g) * K + k) * E + e] = l * 10000 + kind * 5000 + r * 1000 + g * 100 + k * 10 + e;
    return tf.tensor4d(data, [rows, G, K, E]);
  };
  const keyMask = new Uint8Array(rows * K);
  const keyPositions = new Int32Array(rows * K);
  for (let r = 0; r < rows; r++) {
    for (let k = leadingPad[r]; k < K; k++) {
      keyMask[r * K + k] = 1;
      keyPositions[r * K + k] = k - leadingPad[r];
    }
  }
  return { keys: Array.from({ length: layers }, (_, l) => fill(l, 0)), values: Array.from({ length: layers }, (_, l) => fill(l, 1)), keyMask, keyPositions, length: K };
}

/** Plain-loop reference: row r of t, key columns [from, from + len) placed at column `at` of a zero row of length `width`. */
function rowOf(t: tf.Tensor4D, r: number, from: number, len: number, at: number, width: number): number[] {
  const [, G, K, E] = t.shape;
  const d = t.dataSync();
  const out = new Array<number>(G * width * E).fill(0);
  for (let g = 0; g < G; g++) for (let k = 0; k < len; k++) for (let e = 0; e < E; e++) out[(g * width + at + k) * E + e] = d[((r * G + g) * K + from + k) * E + e];
  return out;
}

function rowsOf(t: tf.Tensor4D): number[][] {
  const [B, G, K, E] = t.shape;
  const d = Array.from(t.dataSync());
  return Array.from({ length: B }, (_, r) => d.slice(r * G * K * E, (r + 1) * G * K * E));
}

describe('selectRows', () => {
  test('keeps the given rows in order (runs copied by slice + concat) and trims key columns that are padding in every kept row', () => {
    // K = 6; leading padding per row: 3, 1, 4, 2, 0. Kept rows [2, 3, 0]: pads 4, 2, 3 -> first real column 2, K2 = 4.
    const c = makeCache(5, 6, [3, 1, 4, 2, 0]);
    const s = selectRows(c, [2, 3, 0]);
    assert.equal(s.length, 4);
    for (let l = 0; l < 2; l++) {
      assert.deepEqual(s.keys[l].shape, [3, 2, 4, 3]);
      assert.deepEqual(rowsOf(s.keys[l]), [2, 3, 0].map((r) => rowOf(c.keys[l], r, 2, 4, 0, 4)));
      assert.deepEqual(rowsOf(s.values[l]), [2, 3, 0].map((r) => rowOf(c.values[l], r, 2, 4, 0, 4)));
    }
    // row 2 (pads 4): mask 0 0 1 1; row 3 (pads 2): 1 1 1 1; row 0 (pads 3): 0 1 1 1
    assert.deepEqual(Array.from(s.keyMask), [0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1]);
    assert.deepEqual(Array.from(s.keyPositions), [0, 0, 0, 1, 0, 1, 2, 3, 0, 0, 1, 2]);
    tf.dispose([...c.keys, ...c.values, ...s.keys, ...s.values]);
  });

  test('dropping one middle row and keeping every row both copy exactly; a bad row index is a RangeError', () => {
    const c = makeCache(4, 5, [0, 2, 1, 3]);
    const s = selectRows(c, [0, 1, 3]); // first real column 0 (row 0 has no padding): nothing trimmed
    assert.equal(s.length, 5);
    assert.deepEqual(rowsOf(s.keys[1]), [0, 1, 3].map((r) => rowOf(c.keys[1], r, 0, 5, 0, 5)));
    const all = selectRows(c, [0, 1, 2, 3]);
    assert.deepEqual(rowsOf(all.values[0]), rowsOf(c.values[0]));
    assert.throws(() => selectRows(c, [4]), /row 4 is outside the cache's 4 rows/);
    tf.dispose([...c.keys, ...c.values, ...s.keys, ...s.values, ...all.keys, ...all.values]);
  });
});

describe('mergeCaches', () => {
  test('left-pads the shorter cache to the common key length and stacks the rows, the first cache first', () => {
    const a = makeCache(2, 3, [1, 0]);
    const b = makeCache(1, 5, [2]);
    const m = mergeCaches(a, 2, b, 1);
    assert.equal(m.length, 5);
    for (let l = 0; l < 2; l++) {
      // a's rows shift right by 5 - 3 = 2 columns of zeros; b's row is unchanged
      assert.deepEqual(rowsOf(m.keys[l]), [rowOf(a.keys[l], 0, 0, 3, 2, 5), rowOf(a.keys[l], 1, 0, 3, 2, 5), rowOf(b.keys[l], 0, 0, 5, 0, 5)]);
      assert.deepEqual(rowsOf(m.values[l]), [rowOf(a.values[l], 0, 0, 3, 2, 5), rowOf(a.values[l], 1, 0, 3, 2, 5), rowOf(b.values[l], 0, 0, 5, 0, 5)]);
    }
    assert.deepEqual(Array.from(m.keyMask), [0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1]);
    assert.deepEqual(Array.from(m.keyPositions), [0, 0, 0, 0, 1, 0, 0, 0, 1, 2, 0, 0, 0, 1, 2]);
    tf.dispose([...a.keys, ...a.values, ...b.keys, ...b.values, ...m.keys, ...m.values]);
  });

  test('caches with spare key columns (a decoding step grows them in place) merge and select only their first `length` columns', () => {
    // As a decoding step leaves them: tensors 4 columns wider than the cache, the spare columns holding garbage.
    const a = makeCache(2, 7, [1, 0]);
    const b = makeCache(1, 5, [2]);
    const spare = { ...a, length: 3, keyMask: a.keyMask.filter((_, i) => i % 7 < 3), keyPositions: a.keyPositions.filter((_, i) => i % 7 < 3) };
    const m = mergeCaches(spare, 2, b, 1);
    assert.equal(m.length, 5);
    for (let l = 0; l < 2; l++) {
      assert.deepEqual(m.keys[l].shape, [3, 2, 5, 3]);
      assert.deepEqual(rowsOf(m.keys[l]), [rowOf(a.keys[l], 0, 0, 3, 2, 5), rowOf(a.keys[l], 1, 0, 3, 2, 5), rowOf(b.keys[l], 0, 0, 5, 0, 5)]);
      assert.deepEqual(rowsOf(m.values[l]), [rowOf(a.values[l], 0, 0, 3, 2, 5), rowOf(a.values[l], 1, 0, 3, 2, 5), rowOf(b.values[l], 0, 0, 5, 0, 5)]);
    }
    const s = selectRows(spare, [1]); // row 1 has no padding: all 3 columns kept, none of the spare ones
    assert.deepEqual(s.keys[0].shape, [1, 2, 3, 3]);
    assert.deepEqual(rowsOf(s.keys[0]), [rowOf(a.keys[0], 1, 0, 3, 0, 3)]);
    tf.dispose([...a.keys, ...a.values, ...b.keys, ...b.values, ...m.keys, ...m.values, ...s.keys, ...s.values]);
  });
});
