import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { bradleyTerryLoss } from './bradley-terry-loss';
import { assertAllClose, assertClose, assertNoLeaks, useCpuBackend } from './spec-helpers';

before(useCpuBackend);

const softplus = (x: number): number => Math.log1p(Math.exp(x)); // -log sigma(d) = softplus(-d)

describe('bradleyTerryLoss', () => {
  test('by hand: equal rewards give log 2; a positive gap gives softplus(-gap)', () => {
    const rc = tf.tensor1d([1, 2, 0.5]);
    const rr = tf.tensor1d([1, 0, 1.5]);
    // gaps 0, 2, -1 -> losses log 2, softplus(-2), softplus(1)
    const out = bradleyTerryLoss({ chosenRewards: rc, rejectedRewards: rr });
    const expected = (Math.log(2) + softplus(-2) + softplus(1)) / 3;
    assertClose(out.loss.dataSync()[0], expected, 1e-6, 'loss');
    assertClose(out.metrics['loss/reward'], expected, 1e-6, 'loss metric');
    assertClose(out.metrics['rewards/chosen'], 3.5 / 3, 1e-6, 'chosen');
    assertClose(out.metrics['rewards/rejected'], 2.5 / 3, 1e-6, 'rejected');
    assertClose(out.metrics['rewards/margins'], 1 / 3, 1e-6, 'margins');
    assertClose(out.metrics['rewards/accuracies'], 1 / 3, 1e-6, 'accuracy: only the gap-2 pair wins; the tie is a miss');
    out.loss.dispose();
    tf.dispose([rc, rr]);
  });

  test('margin (scalar and per pair) and centering regulariser', () => {
    const rc = tf.tensor1d([1, 2]);
    const rr = tf.tensor1d([0, -1]);
    // margin 0.5: gaps 1 - 0.5, 3 - 0.5; centering coef 0.1 * mean((1)^2, (1)^2) = 0.1
    const a = bradleyTerryLoss({ chosenRewards: rc, rejectedRewards: rr, margin: 0.5, centeringCoefficient: 0.1 });
    assertClose(a.loss.dataSync()[0], (softplus(-0.5) + softplus(-2.5)) / 2 + 0.1, 1e-6, 'scalar margin + centering');
    const m = tf.tensor1d([1, 4]);
    const b = bradleyTerryLoss({ chosenRewards: rc, rejectedRewards: rr, margin: m });
    assertClose(b.loss.dataSync()[0], (softplus(0) + softplus(1)) / 2, 1e-6, 'per-pair margin');
    tf.dispose([rc, rr, m, a.loss, b.loss]);
  });

  test('gradient: d/dr_c = -sigma(-(r_c - r_r)) / B, d/dr_r the opposite', () => {
    const rc = tf.tensor1d([1, 2]);
    const rr = tf.tensor1d([1, 0]);
    const [gc, gr] = tf.grads((c: tf.Tensor, r: tf.Tensor) => bradleyTerryLoss({ chosenRewards: c as tf.Tensor1D, rejectedRewards: r as tf.Tensor1D }).loss)([rc, rr]);
    const sig = (x: number): number => 1 / (1 + Math.exp(-x));
    assertAllClose(gc, [-sig(0) / 2, -sig(-2) / 2], 1e-6, 'grad chosen');
    assertAllClose(gr, [sig(0) / 2, sig(-2) / 2], 1e-6, 'grad rejected');
    tf.dispose([rc, rr, gc, gr]);
  });

  test('validation and leaks', () => {
    const rc = tf.tensor1d([1, 2]);
    assert.throws(() => bradleyTerryLoss({ chosenRewards: rc, rejectedRewards: tf.zeros([3]) as tf.Tensor1D }), /rejectedRewards shape \[3\] does not match chosenRewards shape \[2\]/);
    assert.throws(() => bradleyTerryLoss({ chosenRewards: tf.zeros([2, 1]) as unknown as tf.Tensor1D, rejectedRewards: rc }), /chosenRewards must have rank 1 \[B\], got shape \[2,1\]/);
    assert.throws(() => bradleyTerryLoss({ chosenRewards: rc, rejectedRewards: rc, centeringCoefficient: -1 }), /centeringCoefficient must be a finite number >= 0, got -1/);
    assertNoLeaks(() => bradleyTerryLoss({ chosenRewards: rc, rejectedRewards: rc, margin: 1, centeringCoefficient: 0.01 }).loss.dispose());
    rc.dispose();
  });
});
