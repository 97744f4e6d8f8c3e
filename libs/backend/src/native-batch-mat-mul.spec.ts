// The native (BLAS) BatchMatMul against the plain wasm kernel and a float64
// loop, forward and gradients. Runs where the addon is built; with
// POSTTRAIN_NATIVE=1 a missing addon is a failure (CI's "with the addon" run),
// with POSTTRAIN_NATIVE=0 the native cases are skipped (the plain-wasm run).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { loadNativeKernels } from '@posttrain/native-kernels';
import { initBackend, nativeKernelsActive, setNativeKernelsEnabled } from './index';
import { assertClose, productShape, reference, runMatMul, size, stored, TRANSPOSES, values } from './mat-mul-reference';

const { addon, status } = loadNativeKernels();
const required = process.env.POSTTRAIN_NATIVE === '1';
const skip = addon === null && !required ? `native addon absent: ${status.reason}` : false;

// Shapes are the logical (untransposed) operands; each runs with all four transpose flags.
const cases: { name: string; a: number[]; b: number[] }[] = [
  { name: '1x1 @ 1x1', a: [1, 1], b: [1, 1] },
  { name: 'K = 1 (outer product)', a: [5, 1], b: [1, 3] },
  { name: 'N = 1', a: [6, 9], b: [9, 1] },
  { name: 'odd 2-D', a: [7, 13], b: [13, 5] },
  { name: 'one row, 2-D (gemv)', a: [1, 33], b: [33, 17] },
  { name: '3-D @ 2-D weight (rows folded)', a: [3, 5, 11], b: [11, 7] },
  { name: '2-D @ 3-D (a broadcast)', a: [5, 16], b: [2, 16, 9] },
  { name: 'batched', a: [4, 6, 10], b: [4, 10, 3] },
  { name: 'batched one row (KV-cache decoding)', a: [4, 1, 32], b: [4, 32, 19] },
  { name: '[1,M,K] @ [B,K,N] (a batch 1 broadcast)', a: [1, 5, 7], b: [3, 7, 4] },
  { name: '4-D broadcast both', a: [2, 1, 8, 5], b: [1, 3, 5, 6] },
  { name: 'rank 4 @ rank 3, broadcast', a: [2, 3, 4, 5], b: [3, 5, 2] },
  { name: 'attention-sized', a: [2, 64, 32], b: [2, 32, 64] },
];

describe('native BatchMatMul (BLAS on the wasm heap) vs plain wasm and a float64 loop', { skip }, () => {
  before(async () => {
    if (addon === null) assert.fail(`POSTTRAIN_NATIVE=1 but the native addon is absent: ${status.reason}`);
    await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
    setNativeKernelsEnabled(true);
    assert.equal(nativeKernelsActive(), true, 'initBackend registered the native kernels');
  });
  after(() => setNativeKernelsEnabled(true));

  for (const sc of cases) {
    for (const [tA, tB] of TRANSPOSES) {
      test(`${sc.name} ${JSON.stringify(sc.a)}@${JSON.stringify(sc.b)} transposeA=${tA} transposeB=${tB}`, () => {
        const aShape = stored(sc.a, tA);
        const bShape = stored(sc.b, tB);
        const a = values(size(aShape), 11);
        const b = values(size(bShape), 12);
        const outShape = productShape(sc.a, sc.b);
        const r = values(size(outShape), 13);
        const calls = countSgemm();
        let native;
        try {
          native = runMatMul(a, aShape, b, bShape, tA, tB, r, outShape);
        } finally {
          calls.restore();
        }
        // Forward, dA and dB: at least three products went through the BLAS.
        assert.ok(calls.count >= 3, `sgemm called ${calls.count} times`);
        setNativeKernelsEnabled(false);
        let wasm;
        try {
          wasm = runMatMul(a, aShape, b, bShape, tA, tB, r, outShape);
        } finally {
          setNativeKernelsEnabled(true);
        }
        const ref = reference(a, aShape, b, bShape, tA, tB, r);
        assert.deepEqual(native.shape, outShape);
        assert.deepEqual(wasm.shape, outShape);
        // Tolerance 1e-4 * max(|ref|, 1): float32 sums of <= 64 products of values in [-1, 1).
        assertClose(native.c, wasm.c, 'native C vs wasm');
        assertClose(native.da, wasm.da, 'native dA vs wasm');
        assertClose(native.db, wasm.db, 'native dB vs wasm');
        assertClose(native.c, ref.c, 'native C vs loop');
        assertClose(native.da, ref.da, 'native dA vs loop');
        assertClose(native.db, ref.db, 'native dB vs loop');
      });
    }
  }

  test('no tensor or wasm buffer leaks', () => {
    const a = tf.tensor(values(3 * 5 * 8, 1), [3, 5, 8]);
    const b = tf.tensor(values(3 * 8 * 4, 2), [3, 8, 4]);
    const step = () => tf.tidy(() => {
      const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y, false, false)))([a, b]);
      ga.dataSync();
      gb.dataSync();
    });
    step();
    const tensors = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds();
    for (let i = 0; i < 3; i++) step();
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(tf.engine().backend.numDataIds(), dataIds);
    tf.dispose([a, b]);
  });

  test('the addon refuses ranges outside the heap', () => {
    const heap = new ArrayBuffer(64); // 16 floats
    assert.throws(() => addon!.sgemm(heap, 2, 2, 2, false, false, Int32Array.of(0), Int32Array.of(4), 14), /output range \[14, \+4\) lies outside the wasm heap of 16 floats/);
    assert.throws(() => addon!.sgemm(heap, 2, 2, 2, false, false, Int32Array.of(-1), Int32Array.of(4), 8), /a range/);
    assert.throws(() => addon!.sgemm(heap, 2, 2, 2, false, false, Int32Array.of(0), Int32Array.of(0, 4), 8), /offsets differ in length/);
    const f = new Float32Array(heap);
    f.set([1, 2, 3, 4], 0); // A [[1,2],[3,4]]
    f.set([5, 6, 7, 8], 4); // B [[5,6],[7,8]]
    addon!.sgemm(heap, 2, 2, 2, false, false, Int32Array.of(0), Int32Array.of(4), 8);
    assert.deepEqual([...f.subarray(8, 12)], [19, 22, 43, 50]);
    addon!.sgemm(heap, 2, 2, 2, true, true, Int32Array.of(0), Int32Array.of(4), 12); // Aᵀ Bᵀ = (B A)ᵀ
    assert.deepEqual([...f.subarray(12, 16)], [23, 31, 34, 46]);
  });
});

/** Counts the addon's sgemm calls until restore() (the kernel looks the method up on every call). */
function countSgemm(): { count: number; restore: () => void } {
  const original = addon!.sgemm;
  const counter = { count: 0, restore: () => { addon!.sgemm = original; } };
  addon!.sgemm = (...args) => {
    counter.count++;
    return original.apply(addon, args);
  };
  return counter;
}
