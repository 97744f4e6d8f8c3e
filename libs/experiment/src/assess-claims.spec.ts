import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { assessClaims, marginalGains } from './assess-claims';
import type { ModelEvaluation, PipelineResult } from './run-pipeline';
import { softmaxEntropy } from './model-evaluation';

describe('marginalGains', () => {
  test('accuracy gain per added example between consecutive sizes', () => {
    // (0.4 - 0.1) / (100 - 30) = 0.3 / 70; (0.5 - 0.4) / (300 - 100) = 0.1 / 200
    const g = marginalGains([
      { sftExamples: 30, accuracy: 0.1 },
      { sftExamples: 100, accuracy: 0.4 },
      { sftExamples: 300, accuracy: 0.5 },
    ]);
    assert.equal(g.length, 2);
    assert.ok(Math.abs(g[0] - 0.3 / 70) < 1e-15);
    assert.ok(Math.abs(g[1] - 0.1 / 200) < 1e-15);
    assert.throws(() => marginalGains([{ sftExamples: 30, accuracy: 0 }, { sftExamples: 30, accuracy: 1 }]), /sizes must ascend/);
  });
});

describe('softmaxEntropy', () => {
  test('uniform logits give ln V; logits [0, ln 3] give p = [1/4, 3/4]', () => {
    // tolerance 1e-12: float64 arithmetic throughout
    assert.ok(Math.abs(softmaxEntropy([5, 5, 5, 5, 5], 0, 5) - Math.log(5)) < 1e-12);
    const h = -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75)); // 0.5623351446...
    assert.ok(Math.abs(softmaxEntropy([9, 9, 0, Math.log(3)], 2, 2) - h) < 1e-12);
  });

  test('agrees with a plain-loop reference on random logits (offset rows, large values)', () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 40 - 20;
    const V = 11;
    const logits = Array.from({ length: 3 * V }, rand).map((x, i) => (i >= 2 * V ? x + 500 : x));
    for (let r = 0; r < 3; r++) {
      const row = logits.slice(r * V, (r + 1) * V);
      const m = Math.max(...row);
      const p = row.map((x) => Math.exp(x - m));
      const z = p.reduce((a, b) => a + b, 0);
      const ref = -p.reduce((a, q) => a + (q / z) * Math.log(q / z), 0);
      assert.ok(Math.abs(softmaxEntropy(logits, r * V, V) - ref) < 1e-10, `row ${r}: ${softmaxEntropy(logits, r * V, V)} vs ${ref}`);
    }
  });
});

function row(model: string, sftExamples: number, o: Partial<ModelEvaluation>): ModelEvaluation {
  return {
    model, sftExamples, accuracy: 0, formatRate: 0, meanReward: 0, preferenceAccuracy: 0.5, preferenceAccuracyPerToken: 0.5, preferenceMarginPerToken: 0,
    answerEntropy: null, tokenEntropy: null, example: { prompt: '', reply: '', answer: '' }, ...o,
  };
}

function result(models: ModelEvaluation[], rl: PipelineResult['rl'] = null): Omit<PipelineResult, 'claims'> {
  return {
    plan: {} as PipelineResult['plan'], outDir: '/x', backend: 'cpu', stages: [], models, rewardModelAccuracy: 0.8, dpoImplicitRewardAccuracy: 0.9,
    rlStages: rl ? ['grpo-sft', 'grpo-base'] : [], rlNote: 'no RL', rl, totalSeconds: 1,
  };
}

describe('assessClaims', () => {
  const base = row('base', 0, { accuracy: 0, formatRate: 0 });
  const dpo = row('dpo', 300, { preferenceAccuracyPerToken: 0.8, answerEntropy: 0.2, tokenEntropy: 0.5 });

  test('claim 1 with a sweep: held when format rises and the gain per example shrinks; not with accelerating gains', () => {
    const sweep = [row('sft-30', 30, { accuracy: 0.1, formatRate: 0.9 }), row('sft-100', 100, { accuracy: 0.3, formatRate: 1 }), row('sft-300', 300, { accuracy: 0.35, formatRate: 1, preferenceAccuracyPerToken: 0.6, answerEntropy: 0.9, tokenEntropy: 1 })];
    const c = assessClaims(result([base, ...sweep, dpo]));
    assert.equal(c[0].held, true); // gains 0.2/70 then 0.05/200
    const accelerating = [sweep[0], row('sft-100', 100, { accuracy: 0.11, formatRate: 1 }), row('sft-300', 300, { accuracy: 0.9, formatRate: 1, preferenceAccuracyPerToken: 0.6, answerEntropy: 0.9, tokenEntropy: 1 })];
    assert.equal(assessClaims(result([base, ...accelerating, dpo]))[0].held, false); // 0.01/70 then 0.79/200
    assert.equal(assessClaims(result([row('base', 0, { formatRate: 0.7 }), ...sweep, dpo]))[0].held, false, 'a base already in format fails the claim');
  });

  test('claim 2 unmeasured without RL; with RL held iff fewer samples and no higher KL', () => {
    const sft = row('sft-300', 300, { formatRate: 1, preferenceAccuracyPerToken: 0.6, answerEntropy: 0.9, tokenEntropy: 1 });
    assert.equal(assessClaims(result([base, sft, dpo]))[1].held, null);
    const pts = (scores: number[], kl: number) => scores.map((score, i) => ({ step: i + 1, samples: 32 * (i + 1), score, kl }));
    const rl = (sftKl: number): PipelineResult['rl'] => ({ fromSft: pts([0.1, 0.4], sftKl), fromBase: pts([0, 0.1], 0.05), threshold: 0.2, samplesFromSft: 64, samplesFromBase: Infinity, meanKlFromSft: sftKl, meanKlFromBase: 0.05 });
    assert.equal(assessClaims(result([base, sft, dpo], rl(0.01)))[1].held, true);
    assert.equal(assessClaims(result([base, sft, dpo], rl(0.2)))[1].held, false);
    assert.match(assessClaims(result([base, sft, dpo], rl(0.01)))[1].measured, /after 64 samples from SFT vs never from base/);
    const none: PipelineResult['rl'] = { fromSft: pts([0, 0], 0), fromBase: pts([0, 0], 0), threshold: Infinity, samplesFromSft: Infinity, samplesFromBase: Infinity, meanKlFromSft: 0, meanKlFromBase: 0 };
    assert.equal(assessClaims(result([base, sft, dpo], none))[1].held, null, 'no reward in either run: no verdict');
  });

  test('claim 3: held iff DPO ranks more pairs right per token and an entropy falls', () => {
    const sft = row('sft-300', 300, { formatRate: 1, preferenceAccuracyPerToken: 0.6, answerEntropy: 0.9, tokenEntropy: 1 });
    assert.equal(assessClaims(result([base, sft, dpo]))[2].held, true);
    assert.equal(assessClaims(result([base, sft, { ...dpo, preferenceAccuracyPerToken: 0.6 }]))[2].held, false, 'a tie in ranking is not an improvement');
    assert.equal(assessClaims(result([base, sft, { ...dpo, answerEntropy: 1, tokenEntropy: 1.2 }]))[2].held, false);
  });
});
