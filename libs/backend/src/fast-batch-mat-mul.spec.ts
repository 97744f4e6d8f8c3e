import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, applyWasmPatches, removeWasmPatches, wasmPatchesActive } from './index';
import { setBatchedMatMulStrategy } from './fast-batch-mat-mul';

// Deterministic pseudo-random values in [-1, 1) (a 32-bit LCG), so failures reproduce.
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const size = (shape: number[]): number => shape.reduce((p, d) => p * d, 1);

/** Broadcast batch shape of two operand batch shapes (numpy rules). */
function broadcast(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    out.push(Math.max(da, db));
  }
  return out;
}

/** Flat batch index of an operand for output batch multi-index `idx`. */
function operandBatch(idx: number[], opBatch: number[]): number {
  let flat = 0;
  const off = idx.length - opBatch.length;
  for (let d = 0; d < opBatch.length; d++) flat = flat * opBatch[d] + (opBatch[d] === 1 ? 0 : idx[d + off]);
  return flat;
}

function unflatten(i: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/**
 * Plain-loop reference for C = op(A) @ op(B) with broadcast batch dims, and
 * for the vector-Jacobian products of L = sum(C * R):
 *   dA[.., i, k] (or [.., k, i] when transposed) += sum_j R[o, i, j] * opB[k, j]
 *   dB[.., k, j] (or [.., j, k]) += sum_i opA[i, k] * R[o, i, j]
 * accumulated over every output batch entry o that reads that operand entry.
 */
function reference(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], tA: boolean, tB: boolean, r: Float32Array) {
  const ar = aShape.length;
  const br = bShape.length;
  const m = tA ? aShape[ar - 1] : aShape[ar - 2];
  const k = tA ? aShape[ar - 2] : aShape[ar - 1];
  const n = tB ? bShape[br - 2] : bShape[br - 1];
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const outBatch = broadcast(aBatch, bBatch);
  const nb = size(outBatch);
  const c = new Float64Array(nb * m * n);
  const da = new Float64Array(a.length);
  const db = new Float64Array(b.length);
  const aAt = (base: number, i: number, kk: number): number => base + (tA ? kk * m + i : i * k + kk);
  const bAt = (base: number, kk: number, j: number): number => base + (tB ? j * k + kk : kk * n + j);
  for (let o = 0; o < nb; o++) {
    const idx = unflatten(o, outBatch);
    const aBase = operandBatch(idx, aBatch) * m * k;
    const bBase = operandBatch(idx, bBatch) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        const rij = r[(o * m + i) * n + j];
        for (let kk = 0; kk < k; kk++) {
          sum += a[aAt(aBase, i, kk)] * b[bAt(bBase, kk, j)];
          da[aAt(aBase, i, kk)] += rij * b[bAt(bBase, kk, j)];
          db[bAt(bBase, kk, j)] += a[aAt(aBase, i, kk)] * rij;
        }
        c[(o * m + i) * n + j] = sum;
      }
    }
  }
  return { c, da, db, outShape: [...outBatch, m, n] };
}

/** Tolerance: |x - ref| <= 1e-4 * max(|ref|, 1) element-wise (float32 sums of <= 64 terms of size <= 1). */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = 1e-4 * Math.max(Math.abs(expected[i]), 1);
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
      assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tolerance ${tol})`);
    }
  }
}

interface Run { c: Float32Array; da: Float32Array; db: Float32Array; shape: number[] }

function runOn(backendName: string, a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], tA: boolean, tB: boolean, r: Float32Array, outShape: number[]): Run {
  const prev = tf.getBackend();
  tf.setBackend(backendName);
  try {
    return tf.tidy(() => {
      const at = tf.tensor(a, aShape);
      const bt = tf.tensor(b, bShape);
      const rt = tf.tensor(r, outShape);
      const c = tf.matMul(at, bt, tA, tB);
      const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, tA, tB), rt)))([at, bt]);
      return { c: c.dataSync() as Float32Array, da: da.dataSync() as Float32Array, db: db.dataSync() as Float32Array, shape: c.shape };
    });
  } finally {
    tf.setBackend(prev);
  }
}

// `cpu: false`: the tfjs cpu kernel sizes the output by max(batchA, batchB)
// and so mishandles batch dims broadcast in both operands; only the loop
// reference is used there.
const shapeCases: { name: string; a: number[]; b: number[]; cpu?: false }[] = [
  { name: '2-D', a: [5, 7], b: [7, 3] },
  { name: '3-D @ 2-D (broadcast weight)', a: [2, 5, 7], b: [7, 3] },
  { name: '3-D @ 2-D, rows >= 16 (XNNPACK even for transposed weight)', a: [2, 16, 24], b: [24, 8] },
  { name: '[1,M,K] @ [1,K,N]', a: [1, 5, 7], b: [1, 7, 3] },
  { name: 'batched, one row (decode, stock loop)', a: [4, 1, 32], b: [4, 32, 40] },
  { name: 'batched, XNNPACK slices', a: [3, 17, 16], b: [3, 16, 19] },
  { name: 'batched, small (stock loop)', a: [4, 3, 2], b: [4, 2, 5] },
  { name: '2-D @ 3-D (broadcast a)', a: [5, 16], b: [2, 16, 64] },
  { name: '4-D broadcast both', a: [2, 1, 8, 16], b: [1, 3, 16, 40], cpu: false },
];

/** Operand shape as stored when transposed: the last two dims swap. */
const stored = (shape: number[], t: boolean): number[] => (t ? [...shape.slice(0, -2), shape[shape.length - 1], shape[shape.length - 2]] : shape);

describe('patched wasm BatchMatMul: forward and gradients', () => {
  before(async () => {
    await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
  });

  for (const sc of shapeCases) {
    for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      test(`${sc.name} ${JSON.stringify(sc.a)}@${JSON.stringify(sc.b)} transposeA=${tA} transposeB=${tB}`, () => {
        const aShape = stored(sc.a, tA);
        const bShape = stored(sc.b, tB);
        const a = values(size(aShape), 1);
        const b = values(size(bShape), 2);
        const outShape = [...broadcast(sc.a.slice(0, -2), sc.b.slice(0, -2)), sc.a[sc.a.length - 2], sc.b[sc.b.length - 1]];
        const r = values(size(outShape), 3);
        const ref = reference(a, aShape, b, bShape, tA, tB, r);
        assert.deepEqual(ref.outShape, outShape);
        const wasm = runOn('wasm', a, aShape, b, bShape, tA, tB, r, outShape);
        assert.deepEqual(wasm.shape, outShape);
        assertClose(wasm.c, ref.c, 'wasm C vs loop');
        assertClose(wasm.da, ref.da, 'wasm dA vs loop');
        assertClose(wasm.db, ref.db, 'wasm dB vs loop');
        if (sc.cpu === false) return;
        const cpu = runOn('cpu', a, aShape, b, bShape, tA, tB, r, outShape);
        assertClose(wasm.c, cpu.c, 'wasm C vs cpu');
        assertClose(wasm.da, cpu.da, 'wasm dA vs cpu');
        assertClose(wasm.db, cpu.db, 'wasm dB vs cpu');
      });
    }
  }

  test('both batched strategies agree with the loop on an attention-shaped product', () => {
    const aShape = [6, 16, 8];
    const bShape = [6, 8, 16];
    const a = values(size(aShape), 4);
    const b = values(size(bShape), 5);
    const r = values(6 * 16 * 16, 6);
    const ref = reference(a, aShape, b, bShape, false, false, r);
    try {
      for (const strategy of ['slices', 'kernel'] as const) {
        setBatchedMatMulStrategy(strategy);
        const wasm = runOn('wasm', a, aShape, b, bShape, false, false, r, [6, 16, 16]);
        assertClose(wasm.c, ref.c, `${strategy} C`);
      }
    } finally {
      setBatchedMatMulStrategy('auto');
    }
  });

  test('no tensor or wasm buffer leaks from forward and backward', () => {
    const a = tf.tensor(values(3 * 17 * 16, 7), [3, 17, 16]);
    const w = tf.tensor(values(16 * 19, 8), [16, 19]);
    const b = tf.tensor(values(3 * 19 * 16, 9), [3, 19, 16]);
    const step = (): void => {
      tf.tidy(() => {
        const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor): tf.Tensor =>
          tf.sum(tf.matMul(tf.matMul(x, y), z, false, false)) as tf.Tensor;
        const grads = tf.grads(f)([a, w, b]);
        for (const g of grads) g.dataSync();
        tf.matMul(a, b, false, true).dataSync();
      });
    };
    step();
    const tensors = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds();
    const bytes = tf.memory().numBytes;
    for (let i = 0; i < 3; i++) step();
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(tf.engine().backend.numDataIds(), dataIds);
    assert.equal(tf.memory().numBytes, bytes);
    tf.dispose([a, w, b]);
  });

  test('removeWasmPatches restores the stock kernel and gradient; applyWasmPatches reinstalls them', () => {
    const x = tf.tensor(values(2 * 3 * 4, 13), [2, 3, 4]);
    const w = tf.tensor(values(4 * 5, 14), [4, 5]);
    const gradW = (): tf.Tensor => tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.matMul(x, v)))(w));
    assert.equal(wasmPatchesActive(), true);
    const patchedKernel = tf.getKernel(tf.BatchMatMul, 'wasm')?.kernelFunc;
    removeWasmPatches();
    try {
      assert.equal(wasmPatchesActive(), false);
      assert.notEqual(tf.getKernel(tf.BatchMatMul, 'wasm')?.kernelFunc, patchedKernel);
      // The stock gradient returns dW of shape [2,4,5] for a broadcast W and the tape rejects it.
      assert.throws(gradW, /gradient of input 'b' has shape '2,4,5', which does not match the shape of the input '4,5'/);
      assert.notEqual(tf.getKernel(tf.UnsortedSegmentSum, 'wasm'), undefined, 'kept: embeddings need it');
    } finally {
      applyWasmPatches();
    }
    assert.equal(wasmPatchesActive(), true);
    assert.equal(tf.getKernel(tf.BatchMatMul, 'wasm')?.kernelFunc === patchedKernel, false, 'a fresh wrapper');
    const g = gradW();
    // dW[k, n] = sum over the 6 rows of x of x[row, k] (dL/dC = 1 everywhere).
    const xv = x.dataSync();
    const expected = Array.from({ length: 20 }, (_, i) => {
      let sum = 0;
      for (let row = 0; row < 6; row++) sum += xv[row * 4 + Math.floor(i / 5)];
      return sum;
    });
    assertClose(g.dataSync(), expected, 'dW after re-applying');
    tf.dispose([x, w, g]);
  });

  test('a mismatched inner dimension still fails with the stock message', () => {
    const a = tf.zeros([2, 3]);
    const b = tf.zeros([4, 5]);
    assert.throws(() => tf.matMul(a, b), /inner shapes \(3\) and \(4\)/);
    tf.dispose([a, b]);
  });
});
