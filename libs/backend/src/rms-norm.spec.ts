// The fused native RMSNorm (forward and gradient kernels) against the tfjs
// formulation on plain wasm and a float64 loop.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { loadNativeKernels } from '@posttrain/native-kernels';
import { initBackend, nativeKernelsActive, rmsNorm, setNativeKernelsEnabled } from './index';
import { values } from './mat-mul-reference';

const { addon, status } = loadNativeKernels();
const skip = addon === null && process.env.POSTTRAIN_NATIVE !== '1' ? `native addon absent: ${status.reason}` : false;

/** y = rmsNorm(x, w) and the gradients of sum(y * r) on the current path. */
function run(x: Float32Array, w: Float32Array, r: Float32Array, n: number, d: number, eps: number) {
  return tf.tidy(() => {
    const xt = tf.tensor2d(x, [n, d]);
    const wt = tf.tensor1d(w);
    const rt = tf.tensor2d(r, [n, d]);
    const y = rmsNorm(xt, wt, eps);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(rmsNorm(a as tf.Tensor2D, b as tf.Tensor1D, eps), rt)))([xt, wt]);
    return { y: y.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array };
  });
}

/** float64: y = x w s, s = (mean x² + eps)^-1/2; dL/dx_j = s (r_j w_j) - s³ x_j Σ_k r_k w_k x_k / D; dL/dw_j = Σ_i r_ij x_ij s_i. */
function reference(x: Float32Array, w: Float32Array, r: Float32Array, n: number, d: number, eps: number) {
  const y = new Float64Array(n * d);
  const dx = new Float64Array(n * d);
  const dw = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += x[i * d + j] ** 2;
    const s = 1 / Math.sqrt(ss / d + eps);
    let dot = 0;
    for (let j = 0; j < d; j++) dot += r[i * d + j] * w[j] * x[i * d + j];
    for (let j = 0; j < d; j++) {
      const k = i * d + j;
      y[k] = x[k] * s * w[j];
      dx[k] = s * r[k] * w[j] - (s ** 3 * x[k] * dot) / d;
      dw[j] += r[k] * x[k] * s;
    }
  }
  return { y, dx, dw };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const bound = tol * Math.max(1, Math.abs(expected[i]));
    if (!(Math.abs(actual[i] - expected[i]) <= bound)) assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tolerance ${bound})`);
  }
}

describe('fused RMSNorm (native) vs tfjs ops on plain wasm and a float64 loop', { skip }, () => {
  before(async () => {
    if (addon === null) assert.fail(`POSTTRAIN_NATIVE=1 but the native addon is absent: ${status.reason}`);
    await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
    assert.equal(nativeKernelsActive(), true);
  });

  for (const [n, d, eps] of [[1, 1, 1e-6], [1, 7, 1e-5], [5, 16, 1e-6], [33, 256, 1e-6], [3, 9, 0.5]] as const) {
    test(`[${n}, ${d}], eps ${eps}: value and gradients`, () => {
      const x = values(n * d, 21).map((v) => v * 3);
      const w = values(d, 22).map((v) => 1 + v / 2);
      const r = values(n * d, 23);
      const counts = { fwd: 0, grad: 0 };
      const fwd = addon!.rmsnorm;
      const grad = addon!.rmsnormGrad;
      addon!.rmsnorm = (...a) => { counts.fwd++; return fwd.apply(addon, a); };
      addon!.rmsnormGrad = (...a) => { counts.grad++; return grad.apply(addon, a); };
      let native;
      try {
        native = run(x, w, r, n, d, eps);
      } finally {
        addon!.rmsnorm = fwd;
        addon!.rmsnormGrad = grad;
      }
      assert.deepEqual(counts, { fwd: 2, grad: 1 }, 'the value and the gradient ran the native kernels');
      setNativeKernelsEnabled(false);
      let plain;
      try {
        plain = run(x, w, r, n, d, eps);
      } finally {
        setNativeKernelsEnabled(true);
      }
      const ref = reference(x, w, r, n, d, eps);
      // float32 with sums of up to 256 terms: 1e-5 relative to max(1, |ref|).
      for (const k of ['y', 'dx', 'dw'] as const) {
        assertClose(native[k], ref[k], 1e-5, `${k} native vs float64`);
        assertClose(native[k], plain[k], 1e-5, `${k} native vs tfjs ops`);
      }
    });
  }

  test('no tensor leaks, with and without a gradient tape', () => {
    const x = tf.tensor2d(values(4 * 8, 1), [4, 8]);
    const w = tf.tensor1d(values(8, 2));
    const round = () => {
      tf.tidy(() => rmsNorm(x, w, 1e-6).dataSync());
      tf.tidy(() => tf.grads((a: tf.Tensor) => tf.sum(rmsNorm(a as tf.Tensor2D, w, 1e-6)))([x])[0].dataSync());
    };
    round();
    const before = tf.memory().numTensors;
    const ids = tf.engine().backend.numDataIds();
    round();
    round();
    assert.equal(tf.memory().numTensors, before);
    assert.equal(tf.engine().backend.numDataIds(), ids);
    tf.dispose([x, w]);
  });

  test('without a gradient tape the kernel runs bare, with the same values as under one', async () => {
    const x = tf.tensor2d(values(3 * 8, 5), [3, 8]);
    const w = tf.tensor1d(values(8, 6));
    const bare = tf.tidy(() => rmsNorm(x, w, 1e-6).dataSync());
    let taped: Float32Array | undefined;
    tf.tidy(() => tf.grads((a: tf.Tensor) => {
      const y = rmsNorm(a as tf.Tensor2D, w, 1e-6);
      taped = y.dataSync() as Float32Array;
      return tf.sum(y);
    })([x]));
    assert.deepEqual(bare, taped);
    const profile = await tf.profile(() => tf.tidy(() => rmsNorm(x, w, 1e-6)));
    assert.deepEqual(profile.kernelNames, ['PosttrainRmsNorm'], 'no tf.customGrad scope around it');
    tf.dispose([x, w]);
  });

  test('shapes are validated with both shapes in the message', () => {
    assert.throws(() => rmsNorm(tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([4]) as tf.Tensor1D, 1e-6), /x \[2,3\] and weight \[4\]: expected \[N, D\] and \[D\]/);
  });
});
