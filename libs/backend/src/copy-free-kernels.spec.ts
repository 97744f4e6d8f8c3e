import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './index';
import { asWasmBackend, wasmData } from './wasm-internals';

/** A deterministic pseudo-random array in [-1, 1) (LCG), with repeats when `levels` is small. */
function pseudoRandom(n: number, seed: number, levels = 0): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    out[i] = levels > 0 ? Math.floor(u * levels) : u * 2 - 1;
  }
  return out;
}

describe('copy-free wasm kernels (Identity, Equal, GatherV2)', () => {
  before(async () => {
    await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
  });

  test('tf.clone shares the buffer, and either copy can be disposed first', () => {
    const backend = asWasmBackend(tf.backend());
    const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    const y = tf.clone(x);
    assert.equal(wasmData(backend, y).memoryOffset, wasmData(backend, x).memoryOffset, 'no copy');
    assert.equal(wasmData(backend, x).refCount, 2);
    x.dispose();
    assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4, 5, 6], 'the clone outlives the original');
    const before = tf.memory().numBytes;
    y.dispose();
    assert.equal(tf.memory().numBytes, before - 24, 'the buffer is freed with its last holder');
  });

  test('gradients that save their inputs (clones) are right: d/dx sum(x*x*x) = 3x^2, after the inputs are gone', () => {
    const x = tf.tensor1d([1, -2, 0.5]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mul(t, t), t)))(x);
    x.dispose();
    assert.deepEqual(Array.from(g.dataSync()), [3, 12, 0.75]);
    g.dispose();
  });

  test('Equal broadcast along the last axis matches a JS loop, NaN included, on either side', () => {
    const a = pseudoRandom(3 * 4 * 5, 7, 3);
    const b = pseudoRandom(3 * 4, 11, 3);
    a[2] = Number.NaN;
    b[5] = Number.NaN;
    a[25] = Number.NaN; // row 5 is NaN on both sides: NaN == NaN is false
    const ta = tf.tensor3d(a, [3, 4, 5]);
    const tb = tf.tensor3d(b, [3, 4, 1]);
    const expected = Array.from(a, (v, i) => (v === b[Math.floor(i / 5)] ? 1 : 0));
    assert.ok(expected.some((e) => e === 1) && expected.some((e) => e === 0), 'the case has both outcomes');
    for (const [out, what] of [[tf.equal(ta, tb), 'a vs b[...,1]'], [tf.equal(tb, ta), 'b[...,1] vs a']] as const) {
      assert.equal(out.dtype, 'bool');
      assert.deepEqual(out.shape, [3, 4, 5]);
      assert.deepEqual(Array.from(out.dataSync()), expected, what);
      out.dispose();
    }
    const ia = tf.tensor2d([1, 2, 2, 3, 4, 3], [2, 3], 'int32');
    const ib = tf.tensor2d([2, 3], [2, 1], 'int32');
    const iout = tf.equal(ia, ib);
    assert.deepEqual(Array.from(iout.dataSync()), [0, 1, 1, 1, 0, 1], 'int32');
    tf.dispose([ta, tb, ia, ib, iout]);
  });

  test('Equal in other shapes (another broadcast axis, same shapes) still runs, right', () => {
    const a = tf.tensor3d([1, 2, 3, 4, 5, 6], [2, 1, 3]);
    const b = tf.tensor3d([1, 0, 3, 4, 0, 6, 1, 2, 3, 0, 5, 0], [2, 2, 3]);
    assert.deepEqual(Array.from(tf.equal(a, b).dataSync()), [1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    assert.deepEqual(Array.from(tf.equal(b, b).dataSync()), Array(12).fill(1));
    tf.dispose([a, b]);
  });

  test('the log-sum-exp gradient (max inside, hence Equal) is the softmax', () => {
    const z = tf.tensor3d(pseudoRandom(2 * 3 * 7, 3).map((v) => v * 4), [2, 3, 7]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.logSumExp(t, -1)))(z);
    const zv = z.dataSync();
    const gv = g.dataSync();
    for (let r = 0; r < 6; r++) {
      let m = -Infinity;
      for (let j = 0; j < 7; j++) m = Math.max(m, zv[r * 7 + j]);
      let s = 0;
      for (let j = 0; j < 7; j++) s += Math.exp(zv[r * 7 + j] - m);
      for (let j = 0; j < 7; j++) {
        const p = Math.exp(zv[r * 7 + j] - m) / s;
        assert.ok(Math.abs(gv[r * 7 + j] - p) <= 1e-6, `row ${r} col ${j}: ${gv[r * 7 + j]} vs softmax ${p}`);
      }
    }
    tf.dispose([z, g]);
  });

  test('GatherV2 of rows copies the right rows (indices of any shape), and rejects an index out of range', () => {
    const table = tf.tensor2d(pseudoRandom(6 * 4, 5), [6, 4]);
    const t = table.dataSync();
    const idx = tf.tensor2d([5, 0, 2, 2, 1, 5], [2, 3], 'int32');
    const out = tf.gather(table, idx);
    assert.deepEqual(out.shape, [2, 3, 4]);
    const expected = [5, 0, 2, 2, 1, 5].flatMap((k) => Array.from(t.subarray(k * 4, k * 4 + 4)));
    assert.deepEqual(Array.from(out.dataSync()), expected);
    const ints = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [4, 1, 2], 'int32');
    assert.deepEqual(Array.from(tf.gather(ints, tf.tensor1d([3, 1], 'int32')).dataSync()), [7, 8, 3, 4]);
    const before = tf.memory().numTensors;
    assert.throws(() => tf.gather(table, tf.tensor1d([1, 6], 'int32')), /GatherV2: the index value 6 is not in \[0, 5\]/);
    assert.ok(tf.memory().numTensors <= before + 1, 'only the indices tensor of the failed call is left');
    tf.dispose([table, idx, out, ints]);
  });

  test('GatherV2 along another axis still runs (stock kernel), and the embedding gradient is a segment sum', () => {
    const m = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(Array.from(tf.gather(m, tf.tensor1d([2, 0], 'int32'), 1).dataSync()), [3, 1, 6, 4]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, tf.tensor1d([1, 1, 0], 'int32'))))(m);
    assert.deepEqual(Array.from(g.dataSync()), [1, 1, 1, 2, 2, 2]);
    tf.dispose([m, g]);
  });
});
