import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { maskedMean, maskedSum, maskedVariance, maskedWhiten } from './masked-reductions';
import { aggregateLoss } from './aggregate-loss';
import { assertAllClose, assertClose, assertNoLeaks, useCpuBackend } from './spec-helpers';

before(useCpuBackend);

const TOL = 1e-6; // float32 on small integers and simple fractions

describe('maskedSum / maskedMean', () => {
  // values  [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
  // mask    [[1, 1, 0], [0, 0, 0], [1, 0, 1]]
  // row sums 3, 0, 16; row means 1.5, 0 (empty row), 8; global sum 19 over 4 tokens.
  const values = [[1, 2, 3], [4, 5, 6], [7, 8, 9]];
  const mask = [[1, 1, 0], [0, 0, 0], [1, 0, 1]];

  test('by hand, globally and along an axis; an all-zero row gives 0', () => {
    const v = tf.tensor2d(values);
    const m = tf.tensor2d(mask);
    assertAllClose(maskedSum(v, m), [19], TOL, 'sum');
    assertAllClose(maskedSum(v, m, 1), [3, 0, 16], TOL, 'row sums');
    assertAllClose(maskedSum(v, m, 0), [8, 2, 9], TOL, 'column sums');
    assertAllClose(maskedMean(v, m), [19 / 4], TOL, 'mean');
    assertAllClose(maskedMean(v, m, 1), [1.5, 0, 8], TOL, 'row means');
    assertAllClose(maskedMean(v, m, -1), [1.5, 0, 8], TOL, 'row means, axis -1');
    assertAllClose(maskedMean(v, m, 0), [4, 2, 9], TOL, 'column means');
    assertAllClose(maskedMean(v, tf.zeros([3, 3])), [0], TOL, 'mean of nothing');
    tf.dispose([v, m]);
  });

  test('NaN and Infinity at masked positions do not leak into the result', () => {
    const v = tf.tensor2d([[1, NaN], [Infinity, 3]]);
    const m = tf.tensor2d([[1, 0], [0, 1]]);
    assertAllClose(maskedSum(v, m), [4], TOL);
    assertAllClose(maskedMean(v, m, 1), [1, 3], TOL);
    tf.dispose([v, m]);
  });

  test('gradient flows only to valid positions, scaled by 1/count', () => {
    const v = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    const m = tf.tensor2d([[1, 1, 0], [1, 0, 0]]);
    // d/dv mean = m / sum(m) = m / 3.
    const g = tf.grad((x: tf.Tensor) => maskedMean(x, m))(v);
    assertAllClose(g, [[1 / 3, 1 / 3, 0], [1 / 3, 0, 0]], TOL, 'grad');
    tf.dispose([v, m, g]);
  });

  test('shape mismatch and bad axis are rejected with both shapes', () => {
    const v = tf.zeros([2, 3]);
    const m = tf.zeros([3, 2]);
    assert.throws(() => maskedMean(v, m), /maskedMean: mask shape \[3,2\] does not match values shape \[2,3\]/);
    assert.throws(() => maskedSum(v, tf.zeros([2, 3]), 2), /axis must be an integer in \[-2, 1\]/);
    tf.dispose([v, m]);
  });

  test('no tensor leaks', () => {
    const v = tf.tensor2d(values);
    const m = tf.tensor2d(mask);
    assertNoLeaks(() => {
      tf.dispose([maskedSum(v, m), maskedMean(v, m, 1), maskedVariance(v, m), maskedWhiten(v, m)]);
    });
    tf.dispose([v, m]);
  });
});

describe('maskedVariance / maskedWhiten', () => {
  // Plain-loop reference of TRL's masked_whiten over the valid entries.
  function referenceWhiten(values: number[][], mask: number[][], shiftMean: boolean): number[][] {
    const xs: number[] = [];
    values.forEach((row, i) => row.forEach((x, j) => mask[i][j] && xs.push(x)));
    const n = xs.length;
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const variance = (xs.reduce((a, x) => a + (x - mean) ** 2, 0) / n) * (n / (n - 1));
    return values.map((row, i) => row.map((x, j) => (mask[i][j] ? (x - mean) / Math.sqrt(variance + 1e-8) + (shiftMean ? 0 : mean) : 0)));
  }

  test('variance by hand: valid values 1, 2, 7, 9 -> mean 4.75, unbiased var 14.9167', () => {
    const v = tf.tensor2d([[1, 2, 3], [7, 8, 9]]);
    const m = tf.tensor2d([[1, 1, 0], [1, 0, 1]]);
    // deviations -3.75, -2.75, 2.25, 4.25 -> squares 14.0625 + 7.5625 + 5.0625 + 18.0625 = 44.75
    assertAllClose(maskedVariance(v, m, { unbiased: false }), [44.75 / 4], 1e-5, 'biased');
    assertAllClose(maskedVariance(v, m), [44.75 / 3], 1e-5, 'unbiased');
    assertAllClose(maskedVariance(v, tf.tensor2d([[0, 1, 0], [0, 0, 0]])), [0], TOL, 'single element');
    assertAllClose(maskedVariance(v, tf.zeros([2, 3])), [0], TOL, 'no element');
    tf.dispose([v, m]);
  });

  test('whitening matches the plain-loop reference, with and without shift_mean', () => {
    const values = [[0.5, -1.5, 3, 100], [2, 2.5, -4, 7]];
    const mask = [[1, 1, 1, 0], [1, 1, 1, 1]];
    const v = tf.tensor2d(values);
    const m = tf.tensor2d(mask);
    for (const shiftMean of [true, false]) {
      const w = maskedWhiten(v, m, { shiftMean });
      assertAllClose(w, referenceWhiten(values, mask, shiftMean), 1e-5, `whiten shiftMean=${shiftMean}`);
      w.dispose();
    }
    const none = tf.zeros([2, 4]);
    const w = maskedWhiten(v, none);
    assertAllClose(w, [[0, 0, 0, 0], [0, 0, 0, 0]], 0, 'all-zero mask: zeros, not NaN');
    tf.dispose([v, m, none, w]);
  });
});

describe('aggregateLoss', () => {
  // L = [[1, 2, 3, 4], [10, 20, 0, 0], [5, 5, 5, 5]] with mask [[1,1,1,1],[1,1,0,0],[0,0,0,0]]
  // token-mean:          (1+2+3+4+10+20) / 6 = 40/6
  // seq-mean-token-sum:  rows with tokens: (10 + 30) / 2 = 20 (empty row excluded)
  // seq-mean-token-mean: (2.5 + 15) / 2 = 8.75
  // seq-mean-token-sum-norm, C = T = 4: 40 / (3 * 4); with C = 10: 40 / 30
  const L = [[1, 2, 3, 4], [10, 20, 0, 0], [5, 5, 5, 5]];
  const M = [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]];

  test('each mode by hand, with an all-zero row and rows of different lengths', () => {
    const l = tf.tensor2d(L);
    const m = tf.tensor2d(M);
    assertClose(aggregateLoss(l, m, 'token-mean').dataSync()[0], 40 / 6, 1e-5, 'token-mean');
    assertClose(aggregateLoss(l, m, 'seq-mean-token-sum').dataSync()[0], 20, 1e-5, 'seq-mean-token-sum');
    assertClose(aggregateLoss(l, m, 'seq-mean-token-mean').dataSync()[0], 8.75, 1e-5, 'seq-mean-token-mean');
    assertClose(aggregateLoss(l, m, 'seq-mean-token-sum-norm').dataSync()[0], 40 / 12, 1e-5, 'sum-norm');
    assertClose(aggregateLoss(l, m, 'seq-mean-token-sum-norm', { constantNormaliser: 10 }).dataSync()[0], 40 / 30, 1e-5, 'sum-norm C=10');
    assertClose(aggregateLoss(l, tf.zeros([3, 4]), 'seq-mean-token-mean').dataSync()[0], 0, 0, 'all empty');
    assert.throws(() => aggregateLoss(l, m, 'mean' as never), /mode must be one of "token-mean"/);
    assert.throws(() => aggregateLoss(l, m, 'seq-mean-token-sum-norm', { constantNormaliser: 0 }), /constantNormaliser must be a finite number > 0, got 0/);
    tf.dispose([l, m]);
  });
});
