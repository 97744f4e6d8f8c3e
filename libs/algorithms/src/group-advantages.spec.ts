import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import {
  drGrpoAdvantages,
  grpoAdvantages,
  reinforcePlusPlusBaselineAdvantages,
  rlooAdvantages,
} from './group-advantages';
import type { GroupAdvantages } from './group-advantages';
import { assertAllClose, assertClose, assertNoLeaks, useCpuBackend } from './spec-helpers';

before(useCpuBackend);

// 3 prompts x 4 samples, prompt-major; the middle group is all equal (0.7 is not exact in float).
const R = [1, 0, 0, 1, 0.7, 0.7, 0.7, 0.7, 3, 1, 2, 0];
const N = 4;
const groups = [R.slice(0, 4), R.slice(4, 8), R.slice(8, 12)];
const mean = (xs: number[]): number => xs.reduce((a, x) => a + x, 0) / xs.length;
const stdUnbiased = (xs: number[]): number => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1));

function take(fn: (r: tf.Tensor1D) => GroupAdvantages): { adv: number[]; metrics: GroupAdvantages['metrics'] } {
  const r = tf.tensor1d(R);
  const out = fn(r);
  const adv = Array.from(out.advantages.dataSync());
  tf.dispose([r, out.advantages]);
  return { adv, metrics: out.metrics };
}

describe('group advantages', () => {
  test('GRPO: (r - mean) / (std + 1e-4) by hand; an all-equal group gets exactly 0', () => {
    const { adv, metrics } = take((r) => grpoAdvantages(r, N));
    // Group 0: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735 -> +-0.5 / 0.57745
    const s0 = Math.sqrt(1 / 3) + 1e-4;
    assertAllClose(adv.slice(0, 4), [0.5 / s0, -0.5 / s0, -0.5 / s0, 0.5 / s0], 1e-5, 'group 0');
    assert.deepEqual(adv.slice(4, 8), [0, 0, 0, 0]);
    const g2 = groups[2];
    assertAllClose(adv.slice(8), g2.map((x) => (x - mean(g2)) / (stdUnbiased(g2) + 1e-4)), 1e-5, 'group 2');
    assertClose(metrics['reward/frac_zero_std'], 1 / 3, 1e-7, 'frac zero std');
    assertClose(metrics['reward/mean'], mean(R), 1e-6, 'mean reward');
    assertClose(metrics['reward/group_std'], mean(groups.map(stdUnbiased)), 1e-5, 'group std');
  });

  test('Dr. GRPO: r - group mean, no std', () => {
    const { adv } = take((r) => drGrpoAdvantages(r, N));
    assertAllClose(adv, groups.flatMap((g) => g.map((x) => x - mean(g))), 1e-6, 'dr grpo');
    assertAllClose(adv.slice(8), [1.5, -0.5, 0.5, -1.5], 1e-6, 'group 2 by hand');
  });

  test('RLOO: r_i - mean of the other n - 1 (plain loop), equal to n/(n-1) (r - mean)', () => {
    const { adv } = take((r) => rlooAdvantages(r, N));
    const loop = groups.flatMap((g) => g.map((x, i) => x - g.filter((_, j) => j !== i).reduce((a, y) => a + y, 0) / (N - 1)));
    assertAllClose(adv, loop, 1e-6, 'rloo');
    assertAllClose(adv.slice(8), [2, -2 / 3, 2 / 3, -2], 1e-6, 'group 2 by hand: 3 - 1, 1 - 5/3, 2 - 4/3, 0 - 2');
  });

  test('REINFORCE++-baseline: group means subtracted, then whitened over the batch (population variance)', () => {
    const whiten = (xs: number[]): number[] => {
      const m = mean(xs);
      const v = xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length;
      return xs.map((x) => (x - m) / Math.sqrt(Math.max(v, 1e-8)));
    };
    const baseline = take((r) => reinforcePlusPlusBaselineAdvantages(r, N)).adv;
    assertAllClose(baseline, whiten(groups.flatMap((g) => g.map((x) => x - mean(g)))), 1e-5, 'reinforce++ baseline');
    // Whitened outputs have mean 0 and population variance 1.
    assertClose(mean(baseline), 0, 1e-6, 'mean');
    assertClose(mean(baseline.map((x) => x * x)), 1, 1e-5, 'variance');
  });

  test('validation: divisibility, group size, rank', () => {
    const r = tf.tensor1d([1, 2, 3, 4, 5]);
    assert.throws(() => grpoAdvantages(r, 2), /grpoAdvantages: rewards length 5 \(shape \[5\]\) is not divisible by groupSize 2/);
    assert.throws(() => grpoAdvantages(r, 1), /groupSize must be an integer >= 2, got 1/);
    assert.throws(() => rlooAdvantages(r, 1.5), /groupSize must be an integer >= 2, got 1.5/);
    assert.throws(() => drGrpoAdvantages(tf.zeros([2, 2]) as unknown as tf.Tensor1D, 2), /rewards must have rank 1/);
    assert.throws(() => grpoAdvantages(tf.tensor1d([1, 2]), 2, { eps: 0 }), /options.eps must be a finite number > 0, got 0/);
    r.dispose();
  });

  test('no tensor leaks', () => {
    const r = tf.tensor1d(R);
    assertNoLeaks(() => {
      for (const f of [grpoAdvantages, drGrpoAdvantages, rlooAdvantages, reinforcePlusPlusBaselineAdvantages]) {
        f(r, N).advantages.dispose();
      }
    });
    r.dispose();
  });
});
