import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { klEstimate, klPenalisedRewards, klPenaltyLoss } from './kl-estimators';
import { assertAllClose, assertClose, assertNoLeaks, useCpuBackend } from './spec-helpers';

before(useCpuBackend);

const LN2 = Math.log(2);

describe('klEstimate', () => {
  test('by hand at d = logp - logp_ref = 0, ln 2, -ln 2', () => {
    const lp = tf.tensor1d([-1, -1 + LN2, -1 - LN2]);
    const ref = tf.tensor1d([-1, -1, -1]);
    const k1 = klEstimate(lp, ref, 'k1');
    const k2 = klEstimate(lp, ref, 'k2');
    const k3 = klEstimate(lp, ref, 'k3');
    assertAllClose(k1, [0, LN2, -LN2], 1e-6, 'k1');
    assertAllClose(k2, [0, LN2 ** 2 / 2, LN2 ** 2 / 2], 1e-6, 'k2');
    // k3 = e^{-d} - 1 + d: d = ln2 -> 1/2 - 1 + ln2; d = -ln2 -> 2 - 1 - ln2
    assertAllClose(k3, [0, LN2 - 0.5, 1 - LN2], 1e-6, 'k3');
    tf.dispose([lp, ref, k1, k2, k3]);
  });

  test('k1 and k3 are unbiased: their exact expectation under pi is KL(pi || ref); k2 is not', () => {
    // Expectation over all tokens of a 4-token vocabulary, weighted by pi (no sampling noise).
    const pi = [0.5, 0.3, 0.15, 0.05];
    const ref = [0.1, 0.2, 0.3, 0.4];
    const kl = pi.reduce((a, p, i) => a + p * Math.log(p / ref[i]), 0);
    const lp = tf.tensor1d(pi.map(Math.log));
    const lr = tf.tensor1d(ref.map(Math.log));
    const expectation = (est: 'k1' | 'k2' | 'k3'): number => {
      const k = klEstimate(lp, lr, est);
      const v = Array.from(k.dataSync()).reduce((a, x, i) => a + pi[i] * x, 0);
      k.dispose();
      return v;
    };
    assertClose(expectation('k1'), kl, 1e-5, 'E[k1]');
    assertClose(expectation('k3'), kl, 1e-5, 'E[k3]');
    assert.ok(Math.abs(expectation('k2') - kl) > 0.05, `k2 should be biased here: ${expectation('k2')} vs ${kl}`);
    tf.dispose([lp, lr]);
  });

  test('rejects mismatched shapes and unknown estimators', () => {
    const a = tf.zeros([2, 3]);
    assert.throws(() => klEstimate(a, tf.zeros([3, 2]), 'k1'), /klEstimate: refLogProbs shape \[3,2\] does not match logProbs shape \[2,3\]/);
    assert.throws(() => klEstimate(a, a, 'k4' as never), /estimator must be one of "k1", "k2", "k3", got "k4"/);
    a.dispose();
  });
});

describe('klPenaltyLoss (KL as a loss term)', () => {
  test('beta * token-mean k3 with both KL metrics, and its gradient', () => {
    // d = [[ln2, -ln2], [ln2, (masked)]]; k3 = [[ln2 - .5, 1 - ln2], [ln2 - .5, -]]
    const lp = tf.tensor2d([[LN2, -LN2], [LN2, 5]]);
    const ref = tf.zeros([2, 2]) as tf.Tensor2D;
    const mask = tf.tensor2d([[1, 1], [1, 0]]);
    const out = klPenaltyLoss({ logProbs: lp, refLogProbs: ref, actionMask: mask, coefficient: 0.04 });
    const k3 = [LN2 - 0.5, 1 - LN2, LN2 - 0.5];
    const mean = (k3[0] + k3[1] + k3[2]) / 3;
    assertClose(out.loss.dataSync()[0], 0.04 * mean, 1e-7, 'loss');
    assertClose(out.metrics['objective/kl_per_token'], mean, 1e-6, 'per token');
    assertClose(out.metrics['objective/kl'], (k3[0] + k3[1] + k3[2]) / 2, 1e-6, 'per sequence sum, mean over rows');
    // d k3 / d logp = 1 - e^{-d}: [1/2, -1, 1/2, masked 0], times beta / 3
    const g = tf.grad((x: tf.Tensor) => klPenaltyLoss({ logProbs: x as tf.Tensor2D, refLogProbs: ref, actionMask: mask, coefficient: 0.04 }).loss)(lp);
    assertAllClose(g, [[(0.04 * 0.5) / 3, (0.04 * -1) / 3], [(0.04 * 0.5) / 3, 0]], 1e-7, 'grad');
    assertNoLeaks(() => klPenaltyLoss({ logProbs: lp, refLogProbs: ref, actionMask: mask, coefficient: 0.1, estimator: 'k2' }).loss.dispose());
    tf.dispose([lp, ref, mask, out.loss, g]);
  });
});

describe('klPenalisedRewards (KL as a per-token reward penalty)', () => {
  test('-beta kl at every valid token, score added at the last valid one; rows of different length and an empty row', () => {
    const lp = tf.tensor2d([[-1, -2, -3], [-0.5, -0.5, -9], [-1, -1, -1]]);
    const ref = tf.tensor2d([[-1.5, -1, -3], [-1, -0.5, -1], [-2, -2, -2]]);
    const mask = tf.tensor2d([[1, 1, 1], [1, 1, 0], [0, 0, 0]]);
    const scores = tf.tensor1d([2, -1, 7]);
    // k1 = lp - ref: row 0 [0.5, -1, 0], row 1 [0.5, 0, masked], row 2 all masked
    // beta 0.1: rewards row 0 [-0.05, 0.1, 0 + 2], row 1 [-0.05, 0 - 1, 0], row 2 zeros (score dropped)
    const out = klPenalisedRewards({ logProbs: lp, refLogProbs: ref, actionMask: mask, scores, klCoefficient: 0.1 });
    assertAllClose(out.rewards, [[-0.05, 0.1, 2], [-0.05, -1, 0], [0, 0, 0]], 1e-6, 'rewards');
    assertAllClose(out.kl, [[0.5, -1, 0], [0.5, 0, 0], [0, 0, 0]], 1e-6, 'kl');
    // objective/kl = mean over rows with tokens of per-row sums: (-0.5 + 0.5) / 2 = 0
    assertClose(out.metrics['objective/kl'], 0, 1e-6, 'objective/kl');
    assertClose(out.metrics['objective/kl_per_token'], 0, 1e-6, 'kl per token');
    assertClose(out.metrics['objective/scores'], 8 / 3, 1e-6, 'scores');
    assertClose(out.metrics['objective/rlhf_reward'], 8 / 3, 1e-6, 'rlhf reward');
    tf.dispose([out.rewards, out.kl]);
    const k3 = klPenalisedRewards({ logProbs: lp, refLogProbs: ref, actionMask: mask, scores, klCoefficient: 1, estimator: 'k3' });
    // row 1 first token d = 0.5: k3 = e^{-0.5} - 1 + 0.5
    assertClose(k3.rewards.dataSync()[3], -(Math.exp(-0.5) - 0.5), 1e-6, 'k3 penalty');
    tf.dispose([k3.rewards, k3.kl]);
    assert.throws(() => klPenalisedRewards({ logProbs: lp, refLogProbs: ref, actionMask: mask, scores: tf.zeros([2]) as tf.Tensor1D, klCoefficient: 0.1 }), /scores shape \[2\] does not match logProbs\[B\] shape \[3\]/);
    assertNoLeaks(() => {
      const o = klPenalisedRewards({ logProbs: lp, refLogProbs: ref, actionMask: mask, scores, klCoefficient: 0.2 });
      tf.dispose([o.rewards, o.kl]);
    });
    tf.dispose([lp, ref, mask, scores]);
  });
});
