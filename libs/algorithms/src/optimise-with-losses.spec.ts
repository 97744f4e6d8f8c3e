// End-to-end use of the losses as a trainer uses them: tf.variableGrads ->
// optimizer.applyGradients -> dispose, on tiny bandit "policies" whose optimum is
// known in closed form, checking the direction and size of what is learned.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { dpoLoss } from './dpo-loss';
import { ppoPolicyLoss } from './ppo-policy-loss';
import { grpoAdvantages } from './group-advantages';
import { logProbsFromLogits } from './log-probs';
import { useCpuBackend } from './spec-helpers';

before(useCpuBackend);

describe('optimising with the losses', () => {
  test('DPO on a 3-token bandit moves probability from the rejected to the chosen token, without leaks', () => {
    const logits = tf.variable(tf.zeros([3]));
    const refLogProbs = tf.fill([3], Math.log(1 / 3)) as tf.Tensor1D;
    const opt = tf.train.sgd(1);
    const before = tf.memory().numTensors;
    let last = { loss: 0, acc: 0 };
    for (let step = 0; step < 30; step++) {
      const { value, grads } = tf.variableGrads(() => {
        const lp = tf.logSoftmax(logits) as tf.Tensor1D; // (3)
        const out = dpoLoss({
          policyChosenLogProbs: tf.slice(lp, [0], [1]),
          policyRejectedLogProbs: tf.slice(lp, [1], [1]),
          referenceChosenLogProbs: tf.slice(refLogProbs, [0], [1]),
          referenceRejectedLogProbs: tf.slice(refLogProbs, [1], [1]),
          beta: 0.5,
        });
        last = { loss: out.metrics['loss/dpo'], acc: out.metrics['rewards/accuracies'] };
        return out.loss;
      });
      opt.applyGradients(grads);
      tf.dispose([value, ...Object.values(grads)]);
    }
    assert.equal(tf.memory().numTensors, before, 'training loop leaked tensors');
    const p = tf.tidy(() => tf.softmax(logits).arraySync() as number[]);
    assert.ok(p[0] > 0.6 && p[1] < 0.1, `p = ${p}`);
    assert.ok(last.loss < 0.2 && last.acc === 1, JSON.stringify(last));
    // log p0 - log p1 = z0 - z1 does not depend on z2, so the DPO gradient on z2 is exactly 0.
    assert.ok(Math.abs(logits.dataSync()[2]) < 1e-6, `z = ${logits.dataSync()}`);
    tf.dispose([logits, refLogProbs]);
    opt.dispose();
  });

  test('GRPO advantages + PPO clip on a 4-armed bandit concentrate on the rewarded arm', () => {
    // Each step: a group of all 4 arms (deterministic "samples"), reward 1 for arm 2.
    // GRPO advantages are positive for arm 2 only; one PPO step per group.
    const logits = tf.variable(tf.zeros([1, 1, 4]) as tf.Tensor3D);
    const opt = tf.train.sgd(0.5);
    const arms = tf.tensor2d([[0], [1], [2], [3]], undefined, 'int32');
    const rewards = tf.tensor1d([0, 0, 1, 0]);
    const { advantages } = grpoAdvantages(rewards, 4);
    const mask = tf.ones([4, 1]) as tf.Tensor2D;
    let clipfrac = 0;
    // log p(arm) for each of the 4 sampled arms: (4,1)
    const armLogProbs = (): tf.Tensor2D =>
      tf.tidy(() => tf.reshape(tf.sum(tf.mul(tf.oneHot(tf.reshape(arms, [4]), 4), tf.reshape(logProbsFromLogits(logits), [1, 4])), 1), [4, 1]) as tf.Tensor2D);
    for (let step = 0; step < 40; step++) {
      const old = armLogProbs(); // the rollout policy, a constant for this step
      const { value, grads } = tf.variableGrads(() => {
        const lp = armLogProbs();
        const out = ppoPolicyLoss({ logProbs: lp, oldLogProbs: old, advantages, actionMask: mask });
        clipfrac = out.metrics['policy/clipfrac'];
        return out.loss;
      });
      opt.applyGradients(grads);
      tf.dispose([old, value, ...Object.values(grads)]);
    }
    const p = tf.tidy(() => tf.softmax(tf.reshape(logits, [4])).arraySync() as number[]);
    assert.ok(p[2] > 0.9, `p = ${p}`);
    assert.equal(clipfrac, 0, 'one step per batch starts at ratio 1: nothing is clipped');
    tf.dispose([logits, arms, rewards, advantages, mask]);
    opt.dispose();
  });
});
