import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, applyWasmPatches, removeWasmPatches, wasmPatchesActive, setNativeKernelsEnabled } from './index';
import { setBatchedMatMulStrategy } from './fast-batch-mat-mul';
import { assertClose, productShape, reference, runMatMul, size, stored, TRANSPOSES, values } from './mat-mul-reference';

function runOn(backendName: string, a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], tA: boolean, tB: boolean, r: Float32Array, outShape: number[]) {
  const prev = tf.getBackend();
  tf.setBackend(backendName);
  try {
    return runMatMul(a, aShape, b, bShape, tA, tB, r, outShape);
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

describe('patched wasm BatchMatMul: forward and gradients', () => {
  before(async () => {
    await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
    // This spec checks the plain wasm kernels; native-batch-mat-mul.spec.ts checks the native ones against them.
    setNativeKernelsEnabled(false);
  });

  for (const sc of shapeCases) {
    for (const [tA, tB] of TRANSPOSES) {
      test(`${sc.name} ${JSON.stringify(sc.a)}@${JSON.stringify(sc.b)} transposeA=${tA} transposeB=${tB}`, () => {
        const aShape = stored(sc.a, tA);
        const bShape = stored(sc.b, tB);
        const a = values(size(aShape), 1);
        const b = values(size(bShape), 2);
        const outShape = productShape(sc.a, sc.b);
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
