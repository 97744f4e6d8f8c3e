// The fused native AdamW update against the same update in tfjs ops on plain
// wasm and a float64 reference, over several steps, with and without decay.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { loadNativeKernels } from '@posttrain/native-kernels';
import { adamWUpdate, initBackend, nativeKernelsActive, setNativeKernelsEnabled } from './index';
import type { AdamWHyper } from './index';
import { values } from './mat-mul-reference';

const { addon, status } = loadNativeKernels();
const skip = addon === null && process.env.POSTTRAIN_NATIVE !== '1' ? `native addon absent: ${status.reason}` : false;

/** Runs `steps` updates from the same start on the current path; returns p, m, v. */
function run(shape: number[], steps: number, h: Omit<AdamWHyper, 'step'>, calls?: { n: number }) {
  const n = shape.reduce((a, b) => a * b, 1);
  const p = tf.variable(tf.tensor(values(n, 1), shape));
  const m = tf.variable(tf.zeros(shape), false);
  const v = tf.variable(tf.zeros(shape), false);
  for (let t = 1; t <= steps; t++) {
    const g = tf.tensor(values(n, 100 + t).map((x) => x * (t % 2 === 0 ? 1e-3 : 1)), shape); // mixed gradient scales
    const before = calls ? tf.memory().numTensors : 0;
    adamWUpdate(p, m, v, g, { ...h, step: t });
    if (calls) assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
    g.dispose();
  }
  const out = { p: p.dataSync() as Float32Array, m: m.dataSync() as Float32Array, v: v.dataSync() as Float32Array };
  tf.dispose([p, m, v]);
  return out;
}

/** float64 AdamW, torch.optim.AdamW's order, for the same inputs. */
function reference(n: number, steps: number, h: Omit<AdamWHyper, 'step'>) {
  const p = Float64Array.from(values(n, 1));
  const m = new Float64Array(n);
  const v = new Float64Array(n);
  for (let t = 1; t <= steps; t++) {
    const g = values(n, 100 + t).map((x) => x * (t % 2 === 0 ? 1e-3 : 1));
    for (let i = 0; i < n; i++) {
      p[i] *= 1 - h.lr * h.weightDecay;
      m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
      v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
      p[i] -= (h.lr * (m[i] / (1 - h.beta1 ** t))) / (Math.sqrt(v[i] / (1 - h.beta2 ** t)) + h.epsilon);
    }
  }
  return { p, m, v };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const bound = tol * Math.max(1, Math.abs(expected[i]));
    if (!(Math.abs(actual[i] - expected[i]) <= bound)) assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tolerance ${bound})`);
  }
}

describe('fused AdamW (native) vs tfjs ops on plain wasm and a float64 loop', { skip }, () => {
  before(async () => {
    if (addon === null) assert.fail(`POSTTRAIN_NATIVE=1 but the native addon is absent: ${status.reason}`);
    await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
    assert.equal(nativeKernelsActive(), true);
  });

  const hypers: [string, Omit<AdamWHyper, 'step'>][] = [
    ['Adam', { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 }],
    ['AdamW, decay 0.1, lr 3e-2', { lr: 3e-2, beta1: 0.8, beta2: 0.95, epsilon: 1e-6, weightDecay: 0.1 }],
  ];
  for (const shape of [[1], [7], [3, 5], [64, 33]]) {
    for (const [name, h] of hypers) {
      test(`${name}, shape [${shape}], 4 steps`, () => {
        const calls = countAdamw();
        let native;
        try {
          native = run(shape, 4, h, { n: 0 });
        } finally {
          calls.restore();
        }
        assert.equal(calls.count, 4, 'each step is one native call');
        setNativeKernelsEnabled(false);
        let plain;
        try {
          plain = run(shape, 4, h);
        } finally {
          setNativeKernelsEnabled(true);
        }
        const ref = reference(shape.reduce((a, b) => a * b, 1), 4, h);
        // Same float32 operations in the same order: equal to rounding.
        for (const k of ['p', 'm', 'v'] as const) {
          assertClose(native[k], plain[k], 1e-6, `${k} native vs tfjs ops`);
          assertClose(native[k], ref[k], 1e-5, `${k} native vs float64`);
        }
      });
    }
  }

  test('mismatched moment shapes are refused with both shapes', () => {
    const p = tf.variable(tf.zeros([2, 3]));
    const m = tf.variable(tf.zeros([3, 2]), false);
    const v = tf.variable(tf.zeros([2, 3]), false);
    const g = tf.zeros([2, 3]);
    assert.throws(() => adamWUpdate(p, m, v, g, { lr: 1, beta1: 0.9, beta2: 0.9, epsilon: 1e-8, weightDecay: 0, step: 1 }), /m has shape \[3,2\] \(float32\), expected \[2,3\]/);
    tf.dispose([p, m, v, g]);
  });
});

function countAdamw(): { count: number; restore: () => void } {
  const original = addon!.adamw;
  const counter = { count: 0, restore: () => { addon!.adamw = original; } };
  addon!.adamw = (...args) => {
    counter.count++;
    return original.apply(addon, args);
  };
  return counter;
}
