import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { dpoLoss } from './dpo-loss';
import type { DpoLossType } from './dpo-loss';
import { assertAllClose, assertClose, assertNoLeaks, useCpuBackend } from './spec-helpers';

before(useCpuBackend);

const logSig = (x: number): number => -Math.log1p(Math.exp(-x));
const sig = (x: number): number => 1 / (1 + Math.exp(-x));

// Plain-loop reference of TRL's dpo_loss, float64.
function reference(piC: number[], piR: number[], refC: number[], refR: number[], beta: number, type: DpoLossType, eps: number): number {
  let total = 0;
  for (let i = 0; i < piC.length; i++) {
    const x = piC[i] - piR[i] - (refC[i] - refR[i]);
    let l: number;
    if (type === 'sigmoid') l = -logSig(beta * x) * (1 - eps) - logSig(-beta * x) * eps;
    else if (type === 'robust') l = (-logSig(beta * x) * (1 - eps) + logSig(-beta * x) * eps) / (1 - 2 * eps);
    else if (type === 'hinge') l = Math.max(0, 1 - beta * x);
    else l = (x - 1 / (2 * beta)) ** 2;
    total += l;
  }
  return total / piC.length;
}

const PI_C = [-10, -4, -7.5];
const PI_R = [-12, -3, -7.5];
const REF_C = [-11, -4, -8];
const REF_R = [-11, -4, -7];
// x = (pi_c - pi_r) - (ref_c - ref_r) = [2 - 0, -1 - 0, 0 - (-1)] = [2, -1, 1]

function inputs() {
  return {
    policyChosenLogProbs: tf.tensor1d(PI_C),
    policyRejectedLogProbs: tf.tensor1d(PI_R),
    referenceChosenLogProbs: tf.tensor1d(REF_C),
    referenceRejectedLogProbs: tf.tensor1d(REF_R),
  };
}
function disposeInputs(t: ReturnType<typeof inputs>): void {
  tf.dispose(Object.values(t));
}

describe('dpoLoss', () => {
  test('sigmoid by hand: beta 0.1, x = [2, -1, 1]', () => {
    const t = inputs();
    const out = dpoLoss({ ...t, beta: 0.1 });
    const expected = -(logSig(0.2) + logSig(-0.1) + logSig(0.1)) / 3;
    assertClose(out.loss.dataSync()[0], expected, 1e-6, 'loss');
    // rewards/chosen = beta (pi_c - ref_c) = 0.1 [1, 0, 0.5]; rejected = 0.1 [-1, 1, -0.5]
    assertClose(out.metrics['rewards/chosen'], 0.05, 1e-6, 'rewards/chosen');
    assertClose(out.metrics['rewards/rejected'], (0.1 * (-1 + 1 - 0.5)) / 3, 1e-6, 'rewards/rejected');
    assertClose(out.metrics['rewards/margins'], (0.1 * (2 - 1 + 1)) / 3, 1e-6, 'rewards/margins');
    assertClose(out.metrics['rewards/accuracies'], 2 / 3, 1e-6, 'accuracies');
    assertClose(out.metrics['logps/chosen'], -21.5 / 3, 1e-5, 'logps/chosen');
    assertClose(out.metrics['logps/rejected'], -22.5 / 3, 1e-5, 'logps/rejected');
    out.loss.dispose();
    disposeInputs(t);
  });

  test('every loss type and label smoothing matches the plain-loop TRL reference', () => {
    const t = inputs();
    const cases: [DpoLossType, number, number][] = [
      ['sigmoid', 0.1, 0],
      ['sigmoid', 0.5, 0.1],
      ['sigmoid', 2, 0.5],
      ['robust', 0.1, 0],
      ['robust', 0.5, 0.2],
      ['hinge', 0.1, 0],
      ['hinge', 2, 0],
      ['ipo', 0.1, 0],
      ['ipo', 1, 0],
    ];
    for (const [lossType, beta, labelSmoothing] of cases) {
      const out = dpoLoss({ ...t, beta, lossType, labelSmoothing });
      assertClose(out.loss.dataSync()[0], reference(PI_C, PI_R, REF_C, REF_R, beta, lossType, labelSmoothing), 1e-5, `${lossType} beta=${beta} eps=${labelSmoothing}`);
      out.loss.dispose();
    }
    // Hand values: hinge beta 2: relu(1 - 2x) = [0, 3, 0] -> 1. IPO beta 1: (x - 0.5)^2 = [2.25, 2.25, 0.25] -> 4.75/3.
    const hinge = dpoLoss({ ...t, beta: 2, lossType: 'hinge' });
    assertClose(hinge.loss.dataSync()[0], 1, 1e-6, 'hinge by hand');
    const ipo = dpoLoss({ ...t, beta: 1, lossType: 'ipo' });
    assertClose(ipo.loss.dataSync()[0], 4.75 / 3, 1e-6, 'ipo by hand');
    tf.dispose([hinge.loss, ipo.loss]);
    disposeInputs(t);
  });

  test('beta -> 0: sigmoid loss -> log 2 and its gradient scales with beta', () => {
    const t = inputs();
    for (const beta of [1e-3, 1e-5]) {
      const out = dpoLoss({ ...t, beta });
      assertClose(out.loss.dataSync()[0], Math.log(2), 2 * beta, `loss at beta=${beta}`);
      out.loss.dispose();
    }
    // d/dpi_c mean_i -log sigma(beta x_i) = -beta sigma(-beta x_i) / B  (-> -beta/(2B) as beta -> 0)
    const gradAt = (beta: number) =>
      tf.grad((c: tf.Tensor) => dpoLoss({ ...t, policyChosenLogProbs: c as tf.Tensor1D, beta }).loss)(t.policyChosenLogProbs);
    const xs = [2, -1, 1];
    for (const beta of [0.1, 1e-4]) {
      const g = gradAt(beta);
      assertAllClose(g, xs.map((x) => (-beta * sig(-beta * x)) / 3), 1e-7, `grad beta=${beta}`);
      g.dispose();
    }
    const gSmall = gradAt(1e-4);
    assertAllClose(gSmall, [-1e-4 / 6, -1e-4 / 6, -1e-4 / 6], 1e-8, 'grad ~ -beta/(2B)');
    gSmall.dispose();
    disposeInputs(t);
  });

  test('gradients of all four inputs by hand (sigmoid, beta 1, x = [2, -1, 1])', () => {
    const t = inputs();
    const [gpc, gpr, grc, grr] = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
      dpoLoss({
        policyChosenLogProbs: a as tf.Tensor1D,
        policyRejectedLogProbs: b as tf.Tensor1D,
        referenceChosenLogProbs: c as tf.Tensor1D,
        referenceRejectedLogProbs: d as tf.Tensor1D,
        beta: 1,
      }).loss,
    )([t.policyChosenLogProbs, t.policyRejectedLogProbs, t.referenceChosenLogProbs, t.referenceRejectedLogProbs]);
    // dL/dx_i = -sigma(-x_i) / 3; dx/dpi_c = 1, dx/dpi_r = -1, dx/dref_c = -1, dx/dref_r = 1.
    const d = [2, -1, 1].map((x) => -sig(-x) / 3);
    assertAllClose(gpc, d, 1e-6, 'd pi_c');
    assertAllClose(gpr, d.map((v) => -v), 1e-6, 'd pi_r');
    assertAllClose(grc, d.map((v) => -v), 1e-6, 'd ref_c');
    assertAllClose(grr, d, 1e-6, 'd ref_r');
    tf.dispose([gpc, gpr, grc, grr]);
    disposeInputs(t);
  });

  test('hinge gradient is zero once beta x >= 1, IPO gradient is 2 (x - 1/(2 beta)) / B', () => {
    const t = inputs();
    const gh = tf.grad((c: tf.Tensor) => dpoLoss({ ...t, policyChosenLogProbs: c as tf.Tensor1D, beta: 2, lossType: 'hinge' }).loss)(t.policyChosenLogProbs);
    // beta x = [4, -2, 2]: only pair 1 is inside the hinge, d/dpi_c relu(1 - 2x) = -2.
    assertAllClose(gh, [0, -2 / 3, 0], 1e-6, 'hinge grad');
    const gi = tf.grad((c: tf.Tensor) => dpoLoss({ ...t, policyChosenLogProbs: c as tf.Tensor1D, beta: 1, lossType: 'ipo' }).loss)(t.policyChosenLogProbs);
    assertAllClose(gi, [2 * 1.5 / 3, 2 * -1.5 / 3, 2 * 0.5 / 3], 1e-6, 'ipo grad');
    tf.dispose([gh, gi]);
    disposeInputs(t);
  });

  test('validation errors name the field, the value and what was expected', () => {
    const t = inputs();
    assert.throws(() => dpoLoss({ ...t, beta: 0 }), /dpoLoss: beta must be a finite number > 0, got 0/);
    assert.throws(() => dpoLoss({ ...t, beta: 0.1, lossType: 'kto' as never }), /lossType must be one of "sigmoid", "robust", "hinge", "ipo", got "kto"/);
    assert.throws(() => dpoLoss({ ...t, beta: 0.1, lossType: 'robust', labelSmoothing: 0.5 }), /labelSmoothing must be a finite number >= 0 and < 0.5, got 0.5/);
    assert.throws(() => dpoLoss({ ...t, beta: 0.1, lossType: 'ipo', labelSmoothing: 0.1 }), /labelSmoothing applies only to lossType "sigmoid" and "robust", got 0.1 with lossType "ipo"/);
    const bad = tf.zeros([2]) as tf.Tensor1D;
    assert.throws(() => dpoLoss({ ...t, referenceRejectedLogProbs: bad, beta: 0.1 }), /referenceRejectedLogProbs shape \[2\] does not match policyChosenLogProbs shape \[3\]/);
    bad.dispose();
    disposeInputs(t);
  });

  test('rpoAlpha adds alpha times the chosen NLL (RPO eq. 1) and reports it as nll_loss', () => {
    const t = inputs();
    const nll = tf.scalar(1.25);
    const out = dpoLoss({ ...t, beta: 0.1, rpoAlpha: 0.5, chosenNll: nll });
    const dpo = -(logSig(0.2) + logSig(-0.1) + logSig(0.1)) / 3;
    assertClose(out.loss.dataSync()[0], dpo + 0.5 * 1.25, 1e-6, 'loss');
    assertClose(out.metrics['loss/dpo'], dpo, 1e-6, 'loss/dpo stays the preference term');
    assertClose(out.metrics.nll_loss!, 1.25, 1e-6, 'nll_loss');
    out.loss.dispose();
    // d/dNLL = alpha; the preference term's gradient is unchanged.
    const g = tf.grad((n: tf.Tensor) => dpoLoss({ ...t, beta: 0.1, rpoAlpha: 0.5, chosenNll: n as tf.Scalar }).loss)(nll);
    assertClose(g.dataSync()[0], 0.5, 1e-6, 'd loss / d nll');
    // alpha 0 with an NLL given: plain DPO's loss, the NLL still reported.
    const plain = dpoLoss({ ...t, beta: 0.1, rpoAlpha: 0, chosenNll: nll });
    assertClose(plain.loss.dataSync()[0], dpo, 1e-6, 'alpha 0');
    assert.throws(() => dpoLoss({ ...t, beta: 0.1, rpoAlpha: 1 }), /dpoLoss: rpoAlpha 1 needs chosenNll/);
    assert.throws(() => dpoLoss({ ...t, beta: 0.1, rpoAlpha: -1, chosenNll: nll }), /rpoAlpha must be a finite number >= 0, got -1/);
    tf.dispose([plain.loss, g, nll]);
    disposeInputs(t);
  });

  test('no tensor leaks for any loss type', () => {
    const t = inputs();
    assertNoLeaks(() => {
      for (const lossType of ['sigmoid', 'robust', 'hinge', 'ipo'] as const) dpoLoss({ ...t, beta: 0.3, lossType }).loss.dispose();
    });
    disposeInputs(t);
  });
});
