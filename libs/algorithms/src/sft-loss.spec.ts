import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { sftLoss, sftLossFromLogProbs } from './sft-loss';
import { assertAllClose, assertClose, assertNoLeaks, useCpuBackend } from './spec-helpers';

before(useCpuBackend);

describe('sftLossFromLogProbs', () => {
  // tokenLogProbs [[-1, -2, -3, -4], [-0.5, -1.5, -9, -9], [-7, -7, -7, -7]]
  // lossMask      [[0, 1, 1, 1],     [1, 1, 0, 0],         [0, 0, 0, 0]]   (prompt token, short row, empty row)
  // token-mean:    (2 + 3 + 4 + 0.5 + 1.5) / 5 = 11 / 5 = 2.2
  // sequence-mean: rows with tokens: (9/3 + 2/2) / 2 = (3 + 1) / 2 = 2
  const lp = [[-1, -2, -3, -4], [-0.5, -1.5, -9, -9], [-7, -7, -7, -7]];
  const mask = [[0, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]];

  test('token-mean and sequence-mean by hand, an all-zero row excluded', () => {
    const t = tf.tensor2d(lp);
    const m = tf.tensor2d(mask);
    const a = sftLossFromLogProbs({ tokenLogProbs: t, lossMask: m });
    assertClose(a.loss.dataSync()[0], 2.2, 1e-6, 'token-mean loss');
    assert.deepEqual(Object.keys(a.metrics).sort(), ['loss/sft', 'sft/num_tokens']);
    assertClose(a.metrics['loss/sft'], 2.2, 1e-6, 'metric');
    assert.equal(a.metrics['sft/num_tokens'], 5);
    const b = sftLossFromLogProbs({ tokenLogProbs: t, lossMask: m, reduction: 'sequence-mean' });
    assertClose(b.loss.dataSync()[0], 2, 1e-6, 'sequence-mean loss');
    const empty = sftLossFromLogProbs({ tokenLogProbs: t, lossMask: tf.zeros([3, 4]) });
    assertClose(empty.loss.dataSync()[0], 0, 0, 'no tokens -> 0, not NaN');
    assert.throws(() => sftLossFromLogProbs({ tokenLogProbs: t, lossMask: m, reduction: 'mean' as never }), /reduction must be one of "token-mean", "sequence-mean", got "mean"/);
    assert.throws(() => sftLossFromLogProbs({ tokenLogProbs: t, lossMask: tf.zeros([3, 3]) as tf.Tensor2D }), /lossMask shape \[3,3\] does not match tokenLogProbs shape \[3,4\]/);
    tf.dispose([t, m, a.loss, b.loss, empty.loss]);
  });
});

describe('sftLoss (from logits)', () => {
  // Plain-loop reference: NLL of label under log-softmax, averaged over masked tokens.
  function reference(logits: number[][][], labels: number[][], mask: number[][]): { tokenMean: number; seqMean: number; acc: number } {
    let total = 0;
    let count = 0;
    let correct = 0;
    const seqMeans: number[] = [];
    logits.forEach((row, b) => {
      let s = 0;
      let c = 0;
      row.forEach((z, t) => {
        if (!mask[b][t]) return;
        const lse = Math.log(z.reduce((a, x) => a + Math.exp(x), 0));
        s += lse - z[labels[b][t]];
        c++;
        if (z.indexOf(Math.max(...z)) === labels[b][t]) correct++;
      });
      total += s;
      count += c;
      if (c > 0) seqMeans.push(s / c);
    });
    return { tokenMean: total / count, seqMean: seqMeans.reduce((a, x) => a + x, 0) / seqMeans.length, acc: correct / count };
  }
  const logits = [
    [[2, 0, -1], [0.5, 0.5, 3], [1, 1, 1]],
    [[0, 4, 0], [-2, 1, 0], [3, 0, 0]],
  ];
  const labels = [
    [0, 1, 2],
    [1, 1, 2],
  ];
  const mask = [
    [1, 1, 0],
    [1, 1, 1],
  ];

  test('matches the plain-loop cross-entropy and token accuracy', () => {
    const ref = reference(logits, labels, mask);
    const z = tf.tensor3d(logits);
    const y = tf.tensor2d(labels, undefined, 'int32');
    const m = tf.tensor2d(mask);
    const a = sftLoss({ logits: z, labels: y, lossMask: m });
    assertClose(a.loss.dataSync()[0], ref.tokenMean, 1e-5, 'token-mean');
    assertClose(a.metrics['sft/mean_token_accuracy'], ref.acc, 1e-6, 'accuracy'); // 3 of 5 by hand: rows 0,0 / 1,0 / 1,1
    assertClose(ref.acc, 3 / 5, 1e-12, 'reference accuracy by hand');
    const b = sftLoss({ logits: z, labels: y, lossMask: m, reduction: 'sequence-mean' });
    assertClose(b.loss.dataSync()[0], ref.seqMean, 1e-5, 'sequence-mean');
    tf.dispose([z, y, m, a.loss, b.loss]);
  });

  test('gradient w.r.t. logits is (softmax - onehot) * mask / count', () => {
    const z = tf.tensor3d(logits);
    const y = tf.tensor2d(labels, undefined, 'int32');
    const m = tf.tensor2d(mask);
    const g = tf.grad((x: tf.Tensor) => sftLoss({ logits: x as tf.Tensor3D, labels: y, lossMask: m }).loss)(z);
    const expected = logits.map((row, b) =>
      row.map((zz, t) => {
        const e = zz.map(Math.exp);
        const s = e.reduce((a, x) => a + x, 0);
        return zz.map((_, v) => (mask[b][t] ? (e[v] / s - (v === labels[b][t] ? 1 : 0)) / 5 : 0));
      }),
    );
    assertAllClose(g, expected.flat(), 1e-6, 'grad');
    tf.dispose([z, y, m, g]);
  });

  test('no tensor leaks, also under variableGrads', () => {
    const z = tf.variable(tf.tensor3d(logits));
    const y = tf.tensor2d(labels, undefined, 'int32');
    const m = tf.tensor2d(mask);
    assertNoLeaks(() => {
      sftLoss({ logits: z, labels: y, lossMask: m }).loss.dispose();
      const { value, grads } = tf.variableGrads(() => sftLoss({ logits: z, labels: y, lossMask: m }).loss);
      tf.dispose([value, ...Object.values(grads)]);
    });
    tf.dispose([z, y, m]);
  });
});
