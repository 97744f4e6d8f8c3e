// The fused SwiGLU gate (native) against the tfjs ops it replaces and a float64 loop.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { loadNativeKernels } from '@posttrain/native-kernels';
import { initBackend, nativeKernelsActive, setNativeKernelsEnabled, swiGluInference } from './index';
import { values } from './mat-mul-reference';

const { addon, status } = loadNativeKernels();
const skip = addon === null && process.env.POSTTRAIN_NATIVE !== '1' ? `native addon absent: ${status.reason}` : false;

function run(gate: Float32Array, up: Float32Array, shape: number[]): Float32Array {
  return tf.tidy(() => swiGluInference(tf.tensor(gate, shape), tf.tensor(up, shape)).dataSync() as Float32Array);
}

describe('fused SwiGLU (native) vs tfjs ops on plain wasm and a float64 loop', { skip }, () => {
  before(async () => {
    if (addon === null) assert.fail(`POSTTRAIN_NATIVE=1 but the native addon is absent: ${status.reason}`);
    await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
    assert.equal(nativeKernelsActive(), true);
  });

  for (const shape of [[1, 1], [1, 7], [3, 688], [32, 352]]) {
    test(`[${shape}]`, () => {
      const n = shape[0] * shape[1];
      const gate = values(n, 31).map((v) => v * 12); // both tails of the sigmoid
      const up = values(n, 32).map((v) => v * 3);
      let calls = 0;
      const original = addon!.swiglu;
      addon!.swiglu = (...a) => { calls++; return original.apply(addon, a); };
      let native;
      try {
        native = run(gate, up, shape);
      } finally {
        addon!.swiglu = original;
      }
      assert.equal(calls, 1, 'the native kernel ran');
      setNativeKernelsEnabled(false);
      let plain;
      try {
        plain = run(gate, up, shape);
      } finally {
        setNativeKernelsEnabled(true);
      }
      // Elementwise: a few float32 roundings (sigmoids' exp differ in the last bits): 1e-6 relative to max(1, |ref|).
      for (let i = 0; i < n; i++) {
        const ref = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
        const bound = 1e-6 * Math.max(1, Math.abs(ref));
        if (!(Math.abs(native[i] - ref) <= bound)) assert.fail(`[${i}] native ${native[i]} vs float64 ${ref}`);
        if (!(Math.abs(native[i] - plain[i]) <= bound)) assert.fail(`[${i}] native ${native[i]} vs tfjs ops ${plain[i]}`);
      }
    });
  }

  test('shapes are validated; the addon refuses ranges outside the heap', () => {
    assert.throws(() => swiGluInference(tf.zeros([2, 3]), tf.zeros([3, 2])), /gate \[2,3\] and up \[3,2\]: expected equal shapes/);
    const heap = new ArrayBuffer(4 * 8);
    assert.throws(() => addon!.swiglu(heap, 0, 4, 6, 4), /out range \[6, \+4\) lies outside the wasm heap of 8 floats/);
  });
});
