import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from './adamw-optimizer';
import { clipGradNorm } from './clip-grad-norm';
import { learningRateAt, warmupStepsFor } from './learning-rate-at';
import { useCpuBackend } from './test-support';

before(useCpuBackend);

/** torch.optim.AdamW's update written as a plain loop over float64 numbers. */
function referenceAdamW(p: number[], grads: number[][], lrs: number[], o: { b1: number; b2: number; eps: number; wd: number; decay: boolean }): number[] {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const x = [...p];
  grads.forEach((g, s) => {
    const t = s + 1;
    for (let i = 0; i < x.length; i++) {
      if (o.decay) x[i] -= lrs[s] * o.wd * x[i];
      m[i] = o.b1 * m[i] + (1 - o.b1) * g[i];
      v[i] = o.b2 * v[i] + (1 - o.b2) * g[i] * g[i];
      const mhat = m[i] / (1 - o.b1 ** t);
      const vhat = v[i] / (1 - o.b2 ** t);
      x[i] -= (lrs[s] * mhat) / (Math.sqrt(vhat) + o.eps);
    }
  });
  return x;
}

describe('AdamW', () => {
  const grads = [
    [0.5, -1, 2, 0.1],
    [0.4, -0.5, 1, -0.2],
    [-0.3, 0.2, 0.5, 0.3],
  ];
  const lrs = [0.1, 0.05, 0.02];
  const opts = { beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1 };

  test('matches the plain-loop reference (matrix: decayed; vector: not) within 1e-6', () => {
    const w = tf.variable(tf.tensor2d([1, -2, 3, 0.5], [2, 2]));
    const b = tf.variable(tf.tensor1d([1, -2, 3, 0.5]));
    const opt = new AdamW([{ name: 'w', variable: w }, { name: 'b', variable: b }], opts);
    for (let s = 0; s < grads.length; s++) {
      const g = [tf.tensor2d(grads[s], [2, 2]), tf.tensor1d(grads[s])];
      opt.apply(g, lrs[s]);
      tf.dispose(g);
    }
    const common = { b1: 0.9, b2: 0.99, eps: 1e-8, wd: 0.1 };
    const wantW = referenceAdamW([1, -2, 3, 0.5], grads, lrs, { ...common, decay: true });
    const wantB = referenceAdamW([1, -2, 3, 0.5], grads, lrs, { ...common, decay: false });
    Array.from(w.dataSync()).forEach((x, i) => assert.ok(Math.abs(x - wantW[i]) < 1e-6, `w[${i}] = ${x}, expected ${wantW[i]}`));
    Array.from(b.dataSync()).forEach((x, i) => assert.ok(Math.abs(x - wantB[i]) < 1e-6, `b[${i}] = ${x}, expected ${wantB[i]}`));
    assert.notDeepEqual(wantW, wantB, 'decay made a difference');
    assert.equal(opt.t, 3);
    opt.dispose();
    tf.dispose([w, b]);
  });

  test('state round-trips: restored optimizer continues bit-identically', () => {
    const run = (restoreAfter: number | null): Float32Array => {
      let w = tf.variable(tf.tensor1d([1, -2, 3, 0.5]));
      let opt = new AdamW([{ name: 'w', variable: w }], opts);
      for (let s = 0; s < grads.length; s++) {
        if (s === restoreAfter) {
          const saved = opt.stateTensors();
          const values = w.dataSync().slice();
          const t = opt.t;
          opt.dispose();
          w.dispose();
          w = tf.variable(tf.tensor1d(values));
          opt = new AdamW([{ name: 'w', variable: w }], opts);
          opt.loadState(t, saved, 'test');
        }
        const g = tf.tensor1d(grads[s]);
        opt.apply([g], lrs[s]);
        g.dispose();
      }
      const out = w.dataSync().slice() as Float32Array;
      opt.dispose();
      w.dispose();
      return out;
    };
    assert.deepEqual(run(2), run(null));
  });

  test('loadState names a missing or misshapen moment', () => {
    const w = tf.variable(tf.zeros([2]));
    const opt = new AdamW([{ name: 'w', variable: w }], opts);
    assert.throws(() => opt.loadState(1, new Map(), 'ckpt'), /ckpt: optimizer state exp_avg\/w is missing/);
    const bad = new Map([['exp_avg/w', { shape: [3], data: new Float32Array(3) }]]);
    assert.throws(() => opt.loadState(1, bad, 'ckpt'), /exp_avg\/w has shape \[3\], expected \[2\]/);
    opt.dispose();
    w.dispose();
  });
});

describe('learningRateAt', () => {
  // Hand values: base 1, warmup 2, total 10.
  const s = { baseLr: 1, warmupSteps: 2, totalSteps: 10 };
  test('warmup is linear from 0', () => {
    assert.equal(learningRateAt(0, { ...s, type: 'cosine' }), 0);
    assert.equal(learningRateAt(1, { ...s, type: 'cosine' }), 0.5);
  });
  test('constant, linear and cosine after warmup', () => {
    assert.equal(learningRateAt(5, { ...s, type: 'constant' }), 1);
    assert.equal(learningRateAt(2, { ...s, type: 'linear' }), 1); // (10-2)/(10-2)
    assert.equal(learningRateAt(6, { ...s, type: 'linear' }), 0.5); // (10-6)/8
    assert.equal(learningRateAt(10, { ...s, type: 'linear' }), 0);
    assert.ok(Math.abs(learningRateAt(6, { ...s, type: 'cosine' }) - 0.5) < 1e-12); // p = 4/8: (1 + cos(pi/2))/2
    assert.ok(Math.abs(learningRateAt(4, { ...s, type: 'cosine' }) - (1 + Math.SQRT1_2) / 2) < 1e-12); // p = 1/4
  });
  test('warmup ratio rounds up like HF', () => {
    assert.equal(warmupStepsFor(0, 0.1, 25), 3);
    assert.equal(warmupStepsFor(4, 0, 25), 4);
  });
});

describe('clipGradNorm', () => {
  test('global norm over all tensors; scales by max / (norm + 1e-6) only above max', () => {
    // norm = sqrt(3^2 + 4^2 + 12^2) = 13
    const g = () => [tf.tensor1d([3, 4]), tf.tensor1d([12])];
    const a = clipGradNorm(g(), 20);
    assert.equal(a.norm, 13);
    assert.equal(a.clipped, false);
    tf.dispose(a.grads);
    const b = clipGradNorm(g(), 6.5);
    assert.equal(b.clipped, true);
    const k = 6.5 / (13 + 1e-6);
    const got = [...b.grads[0].dataSync(), ...b.grads[1].dataSync()];
    [3 * k, 4 * k, 12 * k].forEach((want, i) => assert.ok(Math.abs(got[i] - want) < 1e-6));
    tf.dispose(b.grads);
    const c = clipGradNorm([tf.tensor1d([Number.NaN, 1])], 1);
    assert.ok(Number.isNaN(c.norm));
    assert.equal(c.clipped, false);
    tf.dispose(c.grads);
  });
});
