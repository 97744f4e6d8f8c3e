import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { ppoValueLoss } from './ppo-value-loss';
import { assertAllClose, assertClose, assertNoLeaks, useCpuBackend } from './spec-helpers';

before(useCpuBackend);

// Per token (clip 0.2):           v     old   R    l1 = (v-R)^2   v_clip  l2         used  grad of 0.5*used
// a: moved away, unclipped wins   1.0   0.5   0    1              0.7     0.49       1     (v-R) = 1
// b: moved toward R past clip     0.6   1.0   0.5  0.01           0.8     0.09       0.09  0 (v_clip const)
// c: inside the clip range        1.1   1.0   2    0.81           1.1     0.81       0.81  (v-R) = -0.9
// d: big jump, unclipped wins     0     1     2    4              0.8     1.44       4     -2
// e: masked                       9     0     0    -              -       -          -     0
const V = [[1.0, 0.6, 1.1], [0, 9, 9]];
const OLD = [[0.5, 1.0, 1.0], [1, 0, 0]];
const R = [[0, 0.5, 2], [2, 0, 0]];
const M = [[1, 1, 1], [1, 0, 0]];

describe('ppoValueLoss', () => {
  test('clipped value loss by hand, with clipfrac', () => {
    const [v, old, r, m] = [V, OLD, R, M].map((x) => tf.tensor2d(x));
    const out = ppoValueLoss({ values: v, oldValues: old, returns: r, actionMask: m, clipRange: 0.2 });
    assertClose(out.loss.dataSync()[0], (0.5 * (1 + 0.09 + 0.81 + 4)) / 4, 1e-5, 'loss');
    assertClose(out.metrics['value/clipfrac'], 1 / 4, 1e-6, 'clipfrac (token b)');
    assertClose(out.metrics['value/mean'], (1 + 0.6 + 1.1 + 0) / 4, 1e-6, 'value mean');
    const g = tf.grad((x: tf.Tensor) => ppoValueLoss({ values: x as tf.Tensor2D, oldValues: old, returns: r, actionMask: m, clipRange: 0.2 }).loss)(v);
    assertAllClose(g, [[1 / 4, 0, -0.9 / 4], [-2 / 4, 0, 0]], 1e-6, 'grad');
    const plain = ppoValueLoss({ values: v, oldValues: old, returns: r, actionMask: m });
    assertClose(plain.loss.dataSync()[0], (0.5 * (1 + 0.01 + 0.81 + 4)) / 4, 1e-5, 'unclipped loss');
    assert.equal(plain.metrics['value/clipfrac'], 0);
    tf.dispose([v, old, r, m, out.loss, g, plain.loss]);
  });

  test('validation and leaks', () => {
    const [v, old, r, m] = [V, OLD, R, M].map((x) => tf.tensor2d(x));
    assert.throws(() => ppoValueLoss({ values: v, oldValues: old, returns: tf.zeros([2, 2]) as tf.Tensor2D, actionMask: m }), /ppoValueLoss: returns shape \[2,2\] does not match values shape \[2,3\]/);
    assert.throws(() => ppoValueLoss({ values: v, oldValues: old, returns: r, actionMask: m, clipRange: 0 }), /clipRange must be a finite number > 0, got 0/);
    assertNoLeaks(() => ppoValueLoss({ values: v, oldValues: old, returns: r, actionMask: m, clipRange: 0.2, aggregation: 'seq-mean-token-mean' }).loss.dispose());
    tf.dispose([v, old, r, m]);
  });
});
