import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { gatherLogProbs, logProbsFromLogits, sequenceLogProbs } from './log-probs';
import { entropyFromLogits } from './entropy-from-logits';
import { logSigmoid } from './log-sigmoid';
import { assertAllClose, assertNoLeaks, useCpuBackend } from './spec-helpers';

before(useCpuBackend);

// Plain-loop log-softmax in float64, the naive way (safe for the moderate logits used with it).
function refLogSoftmax(row: number[], temperature = 1): number[] {
  const z = row.map((x) => x / temperature);
  const lse = Math.log(z.reduce((a, x) => a + Math.exp(x), 0));
  return z.map((x) => x - lse);
}

const LOGITS = [
  [
    [1, 2, 3, 0.5],
    [-1, 0, 4, 2],
    [0, 0, 0, 0],
  ],
  [
    [2.5, -3, 1, 1],
    [0.1, 0.2, 0.3, 0.4],
    [5, 1, -2, 3],
  ],
];
const LABELS = [
  [2, 0, 3],
  [1, 3, 0],
];

describe('logProbsFromLogits / gatherLogProbs', () => {
  test('match a plain-loop log-softmax, with and without temperature', () => {
    const logits = tf.tensor3d(LOGITS);
    const labels = tf.tensor2d(LABELS, undefined, 'int32');
    for (const temperature of [1, 0.7, 2]) {
      const full = logProbsFromLogits(logits, { temperature });
      assertAllClose(full, LOGITS.map((b) => b.map((row) => refLogSoftmax(row, temperature))).flat(), 1e-5, `full T=${temperature}`);
      const picked = gatherLogProbs(logits, labels, { temperature });
      const expected = LOGITS.map((b, i) => b.map((row, t) => refLogSoftmax(row, temperature)[LABELS[i][t]]));
      assertAllClose(picked, expected, 1e-5, `gathered T=${temperature}`);
      tf.dispose([full, picked]);
    }
    tf.dispose([logits, labels]);
  });

  test('stable for huge logits where a naive softmax overflows', () => {
    // [1000, 999, 0]: log-softmax = [-log(1 + e^-1 + e^-1000), -1 - log(1 + e^-1 + ...), -1000 - ...]
    const lse = Math.log1p(Math.exp(-1)); // relative to the max
    const logits = tf.tensor3d([[[1000, 999, 0]]]);
    const labels = tf.tensor2d([[1]], undefined, 'int32');
    const lp = gatherLogProbs(logits, labels);
    assertAllClose(lp, [[-1 - lse]], 1e-4, 'huge logits');
    const full = logProbsFromLogits(logits);
    assertAllClose(full, [-lse, -1 - lse, -1000 - lse], 1e-3, 'full huge logits');
    tf.dispose([logits, labels, lp, full]);
  });

  test('gradient of log p(y) w.r.t. logits is onehot(y) - softmax', () => {
    const row = [1, 2, 3, 0.5];
    const p = refLogSoftmax(row).map(Math.exp);
    const logits = tf.tensor3d([[row]]);
    const labels = tf.tensor2d([[2]], undefined, 'int32');
    const g = tf.grad((z: tf.Tensor) => tf.sum(gatherLogProbs(z as tf.Tensor3D, labels)))(logits);
    assertAllClose(g, p.map((pi, i) => (i === 2 ? 1 : 0) - pi), 1e-5, 'grad');
    tf.dispose([logits, labels, g]);
  });

  test('validates shapes, dtype and temperature', () => {
    const logits = tf.zeros([2, 3, 4]);
    assert.throws(
      () => gatherLogProbs(logits as tf.Tensor3D, tf.zeros([2, 4], 'int32') as tf.Tensor2D),
      /gatherLogProbs: labels shape \[2,4\] does not match logits\[B,T\] shape \[2,3\]/,
    );
    assert.throws(() => gatherLogProbs(logits as tf.Tensor3D, tf.zeros([2, 3]) as tf.Tensor2D), /labels must be int32, got float32/);
    assert.throws(() => logProbsFromLogits(tf.zeros([2, 3]) as unknown as tf.Tensor3D), /logits must have rank 3 \[B,T,V\], got shape \[2,3\]/);
    assert.throws(() => logProbsFromLogits(logits as tf.Tensor3D, { temperature: 0 }), /options.temperature must be a finite number > 0, got 0/);
    tf.dispose(logits);
  });

  test('no tensor leaks', () => {
    const logits = tf.tensor3d(LOGITS);
    const labels = tf.tensor2d(LABELS, undefined, 'int32');
    assertNoLeaks(() => {
      tf.dispose([logProbsFromLogits(logits, { temperature: 0.5 }), gatherLogProbs(logits, labels), entropyFromLogits(logits)]);
      const lp = gatherLogProbs(logits, labels);
      const mask = tf.ones([2, 3]) as tf.Tensor2D;
      const s = sequenceLogProbs(lp, mask);
      tf.dispose([lp, mask, s.sum, s.mean]);
    });
    tf.dispose([logits, labels]);
  });
});

describe('sequenceLogProbs', () => {
  test('sum and length-average over the mask, rows of different lengths and an empty row', () => {
    const lp = tf.tensor2d([[-1, -2, -3], [-0.5, -9, -9], [-4, -4, -4]]);
    const mask = tf.tensor2d([[1, 1, 1], [1, 0, 0], [0, 0, 0]]);
    const { sum, mean } = sequenceLogProbs(lp, mask);
    assertAllClose(sum, [-6, -0.5, 0], 1e-6, 'sum');
    assertAllClose(mean, [-2, -0.5, 0], 1e-6, 'mean');
    tf.dispose([lp, mask, sum, mean]);
  });
});

describe('entropyFromLogits', () => {
  test('matches -sum p log p; uniform over V gives log V; -Infinity logits are fine', () => {
    const logits = tf.tensor3d(LOGITS);
    const h = entropyFromLogits(logits);
    const expected = LOGITS.map((b) =>
      b.map((row) => {
        const lp = refLogSoftmax(row);
        return -lp.reduce((a, l) => a + Math.exp(l) * l, 0);
      }),
    );
    assertAllClose(h, expected, 1e-5, 'entropy');
    assertAllClose([h.dataSync()[2]], [Math.log(4)], 1e-6, 'uniform row');
    const masked = tf.tensor3d([[[0, 0, -Infinity, -Infinity]]]);
    const hm = entropyFromLogits(masked);
    assertAllClose(hm, [Math.log(2)], 1e-6, 'masked vocab');
    // Temperature 2 on [0, 2 ln 3]: scaled logits [0, ln 3] -> p = [1/4, 3/4],
    // H = -(1/4 ln 1/4 + 3/4 ln 3/4).
    const two = tf.tensor3d([[[0, 2 * Math.log(3)]]]);
    const hot = entropyFromLogits(two, { temperature: 2 });
    assertAllClose(hot, [-(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75))], 1e-6, 'temperature');
    tf.dispose([logits, h, masked, hm, two, hot]);
  });
});

describe('logSigmoid', () => {
  test('values for moderate and extreme x, and gradient sigma(-x) including x = 0', () => {
    const xs = [-1000, -20, -1, 0, 1, 20, 1000];
    const x = tf.tensor1d(xs);
    // For |x| <= 20, -log(1 + e^-x) in float64; for +-1000: 0 and x.
    const expected = xs.map((v) => (v === 1000 ? 0 : v === -1000 ? -1000 : -Math.log1p(Math.exp(-v))));
    const y = logSigmoid(x);
    assertAllClose(y, expected, 1e-5, 'log sigmoid');
    const g = tf.grad((t: tf.Tensor) => tf.sum(logSigmoid(t)))(x);
    assertAllClose(g, xs.map((v) => 1 / (1 + Math.exp(v))), 1e-6, 'grad');
    tf.dispose([x, y, g]);
  });
});
