// The advantage pipeline's tensor code on the project's default CPU backend (wasm), not only on cpu:
// a kernel that differs there (wasm's OneHot returned zeros for a float32 one-hot) silently breaks PPO.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { computeGae, klPenalisedRewards } from '@posttrain/algorithms';
import { initBackend } from '@posttrain/backend';

before(async () => {
  await initBackend({ backend: 'wasm', logger: { info: () => {} } });
});

describe('on wasm', () => {
  test('klPenalisedRewards puts each score on its row\'s last completion token; GAE with gamma = lambda = 1 returns the reward-to-go', () => {
    assert.equal(tf.getBackend(), 'wasm');
    const mask = tf.tensor2d([[0, 1, 1, 0], [0, 0, 1, 1]]);
    const logProbs = tf.tensor2d([[0, -1, -2, 0], [0, 0, -1, -3]]);
    const refLogProbs = tf.tensor2d([[0, -1.5, -1, 0], [0, 0, -1, -2]]);
    const out = klPenalisedRewards({ logProbs, refLogProbs, actionMask: mask, scores: tf.tensor1d([5, 7]), klCoefficient: 0.1 });
    // By hand, k1: kl_t = logProbs - refLogProbs on completion tokens (0.5, -1 | 0, -1);
    // rewards = -0.1 kl_t, plus the score on the last completion token.
    const rewards = [0, -0.05, 0.1 + 5, 0, 0, 0, 0, 0.1 + 7];
    (out.rewards.dataSync() as Float32Array).forEach((x, i) => assert.ok(Math.abs(x - rewards[i]) <= 1e-6, `rewards[${i}] = ${x}, expected ${rewards[i]} (tolerance 1e-6)`));
    // Zero values, gamma = lambda = 1: the return at t is the sum of the rewards from t on (0 off the mask).
    const gae = computeGae({ rewards: out.rewards, values: tf.zeros([2, 4]) as tf.Tensor2D, actionMask: mask as tf.Tensor2D, gamma: 1, lambda: 1 });
    const returns = [0, 5.05, 5.1, 0, 0, 0, 7.1, 7.1];
    (gae.returns.dataSync() as Float32Array).forEach((x, i) => assert.ok(Math.abs(x - returns[i]) <= 1e-5, `returns[${i}] = ${x}, expected ${returns[i]} (tolerance 1e-5)`));
    tf.dispose([mask, logProbs, refLogProbs, out.rewards, out.kl, gae.returns, gae.advantages]);
  });
});
