import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { ppoPolicyLoss } from './ppo-policy-loss';
import { assertAllClose, assertClose, assertNoLeaks, useCpuBackend } from './spec-helpers';

before(useCpuBackend);

interface Ref {
  loss: number;
  clipfrac: number;
  approxkl: number;
  dualClipfrac: number;
}

// Plain-loop PPO loss, token-mean, float64 (CleanRL / TRL / verl formulas).
function reference(lp: number[][], old: number[][], adv: number[][], mask: number[][], eLow: number, eHigh: number, dual?: number): Ref {
  let sum = 0;
  let n = 0;
  let clipped = 0;
  let kl = 0;
  let dualHits = 0;
  lp.forEach((row, b) =>
    row.forEach((l, t) => {
      if (!mask[b][t]) return;
      const A = adv[b][t];
      const r = Math.exp(l - old[b][t]);
      const l1 = -A * r;
      const l2 = -A * Math.min(Math.max(r, 1 - eLow), 1 + eHigh);
      let loss = Math.max(l1, l2);
      if (dual !== undefined && A < 0 && loss > -A * dual) {
        loss = -A * dual;
        dualHits++;
      }
      sum += loss;
      n++;
      if (l2 > l1) clipped++;
      kl += 0.5 * (l - old[b][t]) ** 2;
    }),
  );
  return { loss: sum / n, clipfrac: clipped / n, approxkl: kl / n, dualClipfrac: dualHits / n };
}

const L = Math.log;
// Ratios per token (row 0): 1, 1.5, 0.5, 1.5, 0.5, 5 ; row 1: 0.9, 1.1, 3, (masked 7), (masked 1), (masked 1)
const RATIOS = [
  [1, 1.5, 0.5, 1.5, 0.5, 5],
  [0.9, 1.1, 3, 7, 1, 1],
];
const ADV = [
  [1, 1, -1, -1, 2, -1],
  [0.5, -0.5, 2, 9, 9, 9],
];
const MASK = [
  [1, 1, 1, 1, 1, 1],
  [1, 1, 1, 0, 0, 0],
];
const OLD = [
  [-1, -2, -0.5, -3, -1.2, -2.5],
  [-0.1, -0.7, -4, -1, -2, -3],
];
const LP = OLD.map((row, b) => row.map((o, t) => o + L(RATIOS[b][t])));

function tensors() {
  return {
    logProbs: tf.tensor2d(LP),
    oldLogProbs: tf.tensor2d(OLD),
    advantages: tf.tensor2d(ADV),
    actionMask: tf.tensor2d(MASK),
  };
}

describe('ppoPolicyLoss', () => {
  test('at ratio 1: loss = -mean(A), clipfrac 0, approx-KL 0', () => {
    const adv = tf.tensor2d(ADV);
    const old = tf.tensor2d(OLD);
    const mask = tf.tensor2d(MASK);
    const out = ppoPolicyLoss({ logProbs: old, oldLogProbs: old, advantages: adv, actionMask: mask });
    // valid advantages: 1 + 1 - 1 - 1 + 2 - 1 + 0.5 - 0.5 + 2 = 3 over 9 tokens
    assertClose(out.loss.dataSync()[0], -3 / 9, 1e-6, 'loss');
    assert.equal(out.metrics['policy/clipfrac'], 0);
    assert.equal(out.metrics['policy/approxkl'], 0);
    assert.equal(out.metrics['policy/ratio_mean'], 1);
    // and the gradient is -A / N at every valid token (d/dlp of -A e^{lp - old} at lp = old)
    // A separate tensor at the same point: differentiating through oldLogProbs too would cancel.
    const lp = tf.clone(old);
    const g = tf.grad((x: tf.Tensor) => ppoPolicyLoss({ logProbs: x as tf.Tensor2D, oldLogProbs: old, advantages: adv, actionMask: mask }).loss)(lp);
    assertAllClose(g, ADV.map((row, b) => row.map((a, t) => (MASK[b][t] ? -a / 9 : 0))), 1e-6, 'grad at ratio 1');
    tf.dispose([adv, old, lp, mask, out.loss, g]);
  });

  test('matches the plain-loop reference: symmetric, asymmetric and dual clip', () => {
    const t = tensors();
    const cases: [number, number, number | undefined][] = [
      [0.2, 0.2, undefined],
      [0.2, 0.28, undefined],
      [0.1, 0.5, undefined],
      [0.2, 0.2, 3],
      [0.2, 0.2, 1.4],
    ];
    for (const [clipLow, clipHigh, dualClip] of cases) {
      const out = ppoPolicyLoss({ ...t, clipLow, clipHigh, dualClip });
      const ref = reference(LP, OLD, ADV, MASK, clipLow, clipHigh, dualClip);
      const what = `clip [${clipLow}, ${clipHigh}] dual ${dualClip}`;
      assertClose(out.loss.dataSync()[0], ref.loss, 1e-5, `${what} loss`);
      assertClose(out.metrics['policy/clipfrac'], ref.clipfrac, 1e-6, `${what} clipfrac`);
      assertClose(out.metrics['policy/approxkl'], ref.approxkl, 1e-5, `${what} approxkl`);
      assertClose(out.metrics['policy/dual_clipfrac'], ref.dualClipfrac, 1e-6, `${what} dual clipfrac`);
      out.loss.dispose();
    }
    // By hand for clip 0.2, no dual: clipped tokens are (A=1, r=1.5), (A=-1, r=0.5),
    // (A=2, r=3) of 9 -> 3/9; dual c=3 caps only (A=-1, r=5): loss 5 -> 3.
    assertClose(reference(LP, OLD, ADV, MASK, 0.2, 0.2).clipfrac, 3 / 9, 1e-12, 'hand clipfrac');
    const noDual = reference(LP, OLD, ADV, MASK, 0.2, 0.2).loss;
    assertClose(reference(LP, OLD, ADV, MASK, 0.2, 0.2, 3).loss, noDual - 2 / 9, 1e-12, 'hand dual');
    tf.dispose(Object.values(t));
  });

  test('gradient by hand: -A r / N where unclipped, 0 where clipped or capped by the dual clip', () => {
    const t = tensors();
    const g = tf.grad((x: tf.Tensor) => ppoPolicyLoss({ ...t, logProbs: x as tf.Tensor2D, clipLow: 0.2, dualClip: 3 }).loss)(t.logProbs);
    // row 0: (A=1,r=1) -1; (1,1.5) clipped 0; (-1,0.5) clipped 0; (-1,1.5) unclipped +1.5;
    //        (2,0.5) unclipped (pessimistic side) -1; (-1,5) dual-capped 0
    // row 1: (0.5,0.9) -0.45; (-0.5,1.1) +0.55; (2,3) clipped 0; masked 0 0 0
    const N = 9;
    assertAllClose(g, [[-1 / N, 0, 0, 1.5 / N, -1 / N, 0], [-0.45 / N, 0.55 / N, 0, 0, 0, 0]], 1e-6, 'grad');
    tf.dispose([g, ...Object.values(t)]);
  });

  test('at the clip bound exactly the loss is -A (1 + eps); just beyond, the gradient is 0', () => {
    const old = tf.tensor2d([[0, 0]]);
    const adv = tf.tensor2d([[1, 1]]);
    const mask = tf.tensor2d([[1, 1]]);
    const at = tf.tensor2d([[L(1.2), L(1.2 + 1e-3)]]);
    const out = ppoPolicyLoss({ logProbs: at, oldLogProbs: old, advantages: adv, actionMask: mask, clipLow: 0.2 });
    assertClose(out.loss.dataSync()[0], -1.2, 1e-6, 'loss at and just past 1 + eps');
    const g = tf.grad((x: tf.Tensor) => ppoPolicyLoss({ logProbs: x as tf.Tensor2D, oldLogProbs: old, advantages: adv, actionMask: mask, clipLow: 0.2 }).loss)(at);
    assertClose(g.dataSync()[1], 0, 0, 'gradient beyond the bound');
    tf.dispose([old, adv, mask, at, out.loss, g]);
  });

  test('[B] advantages broadcast over tokens; aggregation modes differ on unequal lengths', () => {
    const lp = tf.tensor2d([[0, 0, 0], [0, 0, 0]]);
    const mask = tf.tensor2d([[1, 1, 1], [1, 0, 0]]);
    const advSeq = tf.tensor1d([1, -2]);
    // ratio 1 -> per-token loss -A: row 0: -1 x3, row 1: +2 x1
    const tokenMean = ppoPolicyLoss({ logProbs: lp, oldLogProbs: lp, advantages: advSeq, actionMask: mask });
    assertClose(tokenMean.loss.dataSync()[0], (-3 + 2) / 4, 1e-6, 'token-mean');
    const seqMean = ppoPolicyLoss({ logProbs: lp, oldLogProbs: lp, advantages: advSeq, actionMask: mask, aggregation: 'seq-mean-token-mean' });
    assertClose(seqMean.loss.dataSync()[0], (-1 + 2) / 2, 1e-6, 'seq-mean-token-mean');
    const drGrpo = ppoPolicyLoss({ logProbs: lp, oldLogProbs: lp, advantages: advSeq, actionMask: mask, aggregation: 'seq-mean-token-sum-norm', constantNormaliser: 8 });
    assertClose(drGrpo.loss.dataSync()[0], (-3 + 2) / (2 * 8), 1e-6, 'seq-mean-token-sum-norm');
    tf.dispose([lp, mask, advSeq, tokenMean.loss, seqMean.loss, drGrpo.loss]);
  });

  test('an all-zero mask row contributes nothing and no NaN appears', () => {
    const lp = tf.tensor2d([[0.1, -0.2], [NaN, NaN]]);
    const old = tf.tensor2d([[0, 0], [0, 0]]);
    const adv = tf.tensor2d([[1, 1], [1, 1]]);
    const mask = tf.tensor2d([[1, 1], [0, 0]]);
    const out = ppoPolicyLoss({ logProbs: lp, oldLogProbs: old, advantages: adv, actionMask: mask });
    const ref = reference([[0.1, -0.2]], [[0, 0]], [[1, 1]], [[1, 1]], 0.2, 0.2);
    assertClose(out.loss.dataSync()[0], ref.loss, 1e-6, 'loss');
    for (const [k, v] of Object.entries(out.metrics)) assert.ok(Number.isFinite(v), `${k} = ${v}`);
    tf.dispose([lp, old, adv, mask, out.loss]);
  });

  test('validation errors print both shapes / the bad value', () => {
    const t = tensors();
    assert.throws(() => ppoPolicyLoss({ ...t, oldLogProbs: tf.zeros([2, 5]) as tf.Tensor2D }), /ppoPolicyLoss: oldLogProbs shape \[2,5\] does not match logProbs shape \[2,6\]/);
    assert.throws(() => ppoPolicyLoss({ ...t, advantages: tf.zeros([3]) }), /advantages shape \[3\] does not match logProbs\[B\] shape \[2\]/);
    assert.throws(() => ppoPolicyLoss({ ...t, clipLow: 1 }), /clipLow must be a finite number >= 0 and < 1, got 1/);
    assert.throws(() => ppoPolicyLoss({ ...t, dualClip: 1 }), /dualClip must be a finite number > 1, got 1/);
    assert.throws(() => ppoPolicyLoss({ ...t, aggregation: 'sum' as never }), /aggregation must be one of/);
    tf.dispose(Object.values(t));
  });

  test('no tensor leaks, also under variableGrads', () => {
    const t = tensors();
    const v = tf.variable(t.logProbs);
    assertNoLeaks(() => {
      ppoPolicyLoss({ ...t, dualClip: 3, clipHigh: 0.3 }).loss.dispose();
      const { value, grads } = tf.variableGrads(() => ppoPolicyLoss({ ...t, logProbs: v, dualClip: 3 }).loss);
      tf.dispose([value, ...Object.values(grads)]);
    });
    tf.dispose([v, ...Object.values(t)]);
  });
});
