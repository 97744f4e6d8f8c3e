import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { entropyBonusLoss } from './entropy-bonus-loss';
import { entropyFromLogits } from './entropy-from-logits';
import { assertAllClose, assertClose, assertNoLeaks, useCpuBackend } from './spec-helpers';

before(useCpuBackend);

describe('entropyBonusLoss', () => {
  test('-c * mean entropy over valid tokens, by hand', () => {
    // Row 0: uniform over 4 (H = ln 4) and a 2-way uniform via -Infinity logits (H = ln 2); row 1 masked.
    const logits = tf.tensor3d([[[0, 0, 0, 0], [1, 1, -Infinity, -Infinity]], [[5, 0, 0, 0], [0, 0, 0, 0]]]);
    const mask = tf.tensor2d([[1, 1], [0, 0]]);
    const h = entropyFromLogits(logits);
    const out = entropyBonusLoss({ entropy: h, actionMask: mask, coefficient: 0.01 });
    const meanH = (Math.log(4) + Math.log(2)) / 2;
    assertClose(out.metrics['objective/entropy'], meanH, 1e-6, 'objective/entropy');
    assertClose(out.loss.dataSync()[0], -0.01 * meanH, 1e-8, 'loss');
    tf.dispose([h, out.loss]);
    // Gradient at uniform logits is 0 (entropy is maximal there); away from it, d/dz H
    // for p = softmax(z) is -p_v (z_v - sum_u p_u z_u): check on one token.
    const z = [2, 0, -1];
    const zt = tf.tensor3d([[z]]);
    const one = tf.ones([1, 1]) as tf.Tensor2D;
    const g = tf.grad((x: tf.Tensor) => entropyBonusLoss({ entropy: entropyFromLogits(x as tf.Tensor3D), actionMask: one, coefficient: 1 }).loss)(zt);
    const e = z.map(Math.exp);
    const s = e.reduce((a, x) => a + x, 0);
    const p = e.map((x) => x / s);
    const pz = p.reduce((a, pv, i) => a + pv * z[i], 0);
    assertAllClose(g, p.map((pv, i) => pv * (z[i] - pz)), 1e-6, 'grad of -H');
    assert.throws(() => entropyBonusLoss({ entropy: one, actionMask: mask, coefficient: 1 }), /actionMask shape \[2,2\] does not match entropy shape \[1,1\]/);
    assertNoLeaks(() => entropyBonusLoss({ entropy: one, actionMask: one, coefficient: 0.1, aggregation: 'seq-mean-token-sum' }).loss.dispose());
    tf.dispose([logits, mask, zt, one, g]);
  });
});
