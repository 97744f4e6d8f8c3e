/**
 * Test support for BatchMatMul kernels (not a spec): deterministic inputs and
 * a plain-loop float64 reference for C = op(A) @ op(B) with broadcast batch
 * dims and its vector-Jacobian products, shared by the wasm-patch and native
 * kernel specs.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';

// Deterministic pseudo-random values in [-1, 1) (a 32-bit LCG), so failures reproduce.
export function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

export const size = (shape: number[]): number => shape.reduce((p, d) => p * d, 1);

/** Broadcast batch shape of two operand batch shapes (numpy rules). */
export function broadcast(a: number[], b: number[]): number[] {
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
export function reference(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], tA: boolean, tB: boolean, r: Float32Array) {
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

/** Tolerance: |x - ref| <= rel * max(|ref|, 1) element-wise; rel 1e-4 by default (float32 sums of <= 64 terms of size <= 1). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rel = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = rel * Math.max(Math.abs(expected[i]), 1);
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
      assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tolerance ${tol})`);
    }
  }
}

export interface Run { c: Float32Array; da: Float32Array; db: Float32Array; shape: number[] }

/** C = op(A) @ op(B) and the gradients of sum(C * R) on the current backend, as plain arrays. */
export function runMatMul(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], tA: boolean, tB: boolean, r: Float32Array, outShape: number[]): Run {
  return tf.tidy(() => {
    const at = tf.tensor(a, aShape);
    const bt = tf.tensor(b, bShape);
    const rt = tf.tensor(r, outShape);
    const c = tf.matMul(at, bt, tA, tB);
    const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, tA, tB), rt)))([at, bt]);
    return { c: c.dataSync() as Float32Array, da: da.dataSync() as Float32Array, db: db.dataSync() as Float32Array, shape: c.shape };
  });
}

/** Operand shape as stored when transposed: the last two dims swap. */
export const stored = (shape: number[], t: boolean): number[] => (t ? [...shape.slice(0, -2), shape[shape.length - 1], shape[shape.length - 2]] : shape);

/** The output shape of op(A) @ op(B) given the logical (untransposed) operand shapes. */
export const productShape = (a: number[], b: number[]): number[] => [...broadcast(a.slice(0, -2), b.slice(0, -2)), a[a.length - 2], b[b.length - 1]];

export const TRANSPOSES = [[false, false], [false, true], [true, false], [true, true]] as const;
