import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { computeGae } from './compute-gae';
import { assertAllClose, assertNoLeaks, useCpuBackend } from './spec-helpers';

before(useCpuBackend);

// The textbook right-padded loop (TRL PPOTrainer / OpenRLHF get_advantages_and_returns),
// float64: rewards and values zeroed at padding, V_{T} = 0, result masked.
function reference(rewards: number[][], values: number[][], mask: number[][], gamma: number, lambda: number) {
  const adv = rewards.map((row) => row.map(() => 0));
  rewards.forEach((row, b) => {
    const T = row.length;
    const r = row.map((x, t) => x * mask[b][t]);
    const v = values[b].map((x, t) => x * mask[b][t]);
    let last = 0;
    for (let t = T - 1; t >= 0; t--) {
      const next = t < T - 1 ? v[t + 1] : 0;
      const delta = r[t] + gamma * next - v[t];
      last = delta + gamma * lambda * last;
      adv[b][t] = last * mask[b][t];
    }
  });
  const ret = adv.map((row, b) => row.map((a, t) => (mask[b][t] ? a + values[b][t] : 0)));
  return { adv, ret };
}

function run(rewards: number[][], values: number[][], mask: number[][], gamma: number, lambda: number) {
  const [r, v, m] = [rewards, values, mask].map((x) => tf.tensor2d(x));
  const out = computeGae({ rewards: r, values: v, actionMask: m, gamma, lambda });
  const result = { adv: out.advantages.arraySync(), ret: out.returns.arraySync() };
  tf.dispose([r, v, m, out.advantages, out.returns]);
  return result;
}

describe('computeGae', () => {
  const rewards = [[0, 0, 1]];
  const values = [[0.5, 0.6, 0.7]];
  const mask = [[1, 1, 1]];

  test('gamma = lambda = 1: Monte Carlo return minus V', () => {
    // sum of future rewards is 1 at every t: A = 1 - V = [0.5, 0.4, 0.3], returns = [1, 1, 1]
    const out = run(rewards, values, mask, 1, 1);
    assertAllClose(out.adv.flat(), [0.5, 0.4, 0.3], 1e-6, 'advantages');
    assertAllClose(out.ret.flat(), [1, 1, 1], 1e-6, 'returns');
  });

  test('lambda = 0: one-step TD error', () => {
    // delta_t = r_t + V_{t+1} - V_t = [0.1, 0.1, 1 - 0.7]
    const out = run(rewards, values, mask, 1, 0);
    assertAllClose(out.adv.flat(), [0.1, 0.1, 0.3], 1e-6, 'advantages');
    assertAllClose(out.ret.flat(), [0.6, 0.7, 1], 1e-6, 'returns');
  });

  test('gamma = 0: A = r - V whatever lambda', () => {
    for (const lambda of [0, 0.5, 1]) {
      const out = run(rewards, values, mask, 0, lambda);
      assertAllClose(out.adv.flat(), [-0.5, -0.6, 0.3], 1e-6, `advantages lambda=${lambda}`);
      assertAllClose(out.ret.flat(), [0, 0, 1], 1e-6, `returns lambda=${lambda}`);
    }
  });

  test('variable lengths, garbage in the padding, and an all-zero row match the reference', () => {
    const R = [
      [0.1, -0.2, 0.3, 1.5, 0],
      [0.0, 2.0, 77, 77, 77],
      [5, 5, 5, 5, 5],
      [-0.3, 0.2, 0.1, 0.05, -1],
    ];
    const V = [
      [0.2, 0.4, 0.1, -0.3, 0.9],
      [0.1, 0.2, 99, 99, 99],
      [1, 2, 3, 4, 5],
      [0.5, 0.4, 0.3, 0.2, 0.1],
    ];
    const M = [
      [1, 1, 1, 1, 0],
      [1, 1, 0, 0, 0],
      [0, 0, 0, 0, 0],
      [1, 1, 1, 1, 1],
    ];
    for (const [gamma, lambda] of [[1, 1], [0.99, 0.95], [0.9, 0], [0, 1], [1, 0.5]]) {
      const ref = reference(R, V, M, gamma, lambda);
      const out = run(R, V, M, gamma, lambda);
      assertAllClose(out.adv.flat(), ref.adv, 1e-5, `advantages gamma=${gamma} lambda=${lambda}`);
      assertAllClose(out.ret.flat(), ref.ret, 1e-5, `returns gamma=${gamma} lambda=${lambda}`);
      assert.deepEqual(out.adv[2], [0, 0, 0, 0, 0]);
    }
    // Row 1 by hand at gamma = lambda = 1: A = [2 - 0.1, 2 - 0.2] = [1.9, 1.8]
    assertAllClose(run(R, V, M, 1, 1).adv[1], [1.9, 1.8, 0, 0, 0], 1e-6, 'row 1 by hand');
  });

  test('interior masked tokens are skipped: same as the compressed row', () => {
    const holed = run([[1, 50, 2, 0]], [[0.3, 9, 0.6, 0]], [[1, 0, 1, 0]], 0.9, 0.8);
    const compact = run([[1, 2]], [[0.3, 0.6]], [[1, 1]], 0.9, 0.8);
    assertAllClose([holed.adv[0][0], holed.adv[0][2]], compact.adv[0], 1e-6, 'advantages');
    assert.equal(holed.adv[0][1], 0);
    assert.equal(holed.ret[0][1], 0);
  });

  test('validation and leaks', () => {
    const r = tf.tensor2d([[1, 2]]);
    const v = tf.tensor2d([[0, 0]]);
    assert.throws(() => computeGae({ rewards: r, values: tf.zeros([1, 3]) as tf.Tensor2D, actionMask: v, gamma: 1, lambda: 1 }), /computeGae: values shape \[1,3\] does not match rewards shape \[1,2\]/);
    assert.throws(() => computeGae({ rewards: r, values: v, actionMask: v, gamma: 1.1, lambda: 1 }), /gamma must be a finite number >= 0 and <= 1, got 1.1/);
    assert.throws(() => computeGae({ rewards: r, values: v, actionMask: v, gamma: 1, lambda: -0.1 }), /lambda must be/);
    const half = tf.tensor2d([[1, 0.5]]);
    assert.throws(() => computeGae({ rewards: r, values: v, actionMask: half, gamma: 1, lambda: 1 }), /actionMask\[0\]\[1\] must be 0 or 1, got 0.5/);
    const ones = tf.ones([1, 2]) as tf.Tensor2D;
    assertNoLeaks(() => {
      const out = computeGae({ rewards: r, values: v, actionMask: ones, gamma: 0.9, lambda: 0.9 });
      tf.dispose([out.advantages, out.returns]);
    });
    tf.dispose([r, v, half, ones]);
  });
});
