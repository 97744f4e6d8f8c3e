import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { assessClaims, atLeast, CLAIM_1_WITHOUT_SWEEP, CLAIMS, claimInputs, atMost, gainMargin, judgeClaims, marginalGains, pairedDifference, poolClaimInputs, poolEstimates } from './assess-claims';
import type { ClaimInputs } from './assess-claims';
import type { Estimate, ModelEvaluation, PipelineResult } from './pipeline-types';
import { meanAndStderr, softmaxEntropy } from './model-evaluation';

const e = (value: number, stderr = 0): Estimate => ({ value, stderr });

describe('marginalGains', () => {
  test('accuracy gain per added example between consecutive sizes, with the SE of the difference', () => {
    // (0.4 - 0.1) / (100 - 30) = 0.3 / 70, SE sqrt(0.03^2 + 0.04^2) / 70 = 0.05 / 70; (0.5 - 0.4) / (300 - 100) = 0.1 / 200
    const g = marginalGains([
      { examples: 30, accuracy: e(0.1, 0.03) },
      { examples: 100, accuracy: e(0.4, 0.04) },
      { examples: 300, accuracy: e(0.5) },
    ]);
    assert.equal(g.length, 2);
    assert.ok(Math.abs(g[0].value - 0.3 / 70) < 1e-15);
    assert.ok(Math.abs(g[0].stderr - 0.05 / 70) < 1e-15);
    assert.ok(Math.abs(g[1].value - 0.1 / 200) < 1e-15);
    assert.ok(Math.abs(g[1].stderr - 0.04 / 200) < 1e-15);
    assert.throws(() => marginalGains([{ examples: 30, accuracy: e(0) }, { examples: 30, accuracy: e(1) }]), /sizes must ascend/);
  });
});

describe('the 2-SE rules', () => {
  test('atLeast: held beyond 2 SE above, did not hold beyond 2 SE below, not shown in between', () => {
    assert.equal(atLeast('x', e(0.95, 0.02), 0.9).verdict, 'held'); // 0.95 - 0.04 = 0.91 >= 0.9
    assert.equal(atLeast('x', e(0.93, 0.02), 0.9).verdict, 'not shown'); // 0.89 < 0.9 <= 0.97
    assert.equal(atLeast('x', e(0.85, 0.02), 0.9).verdict, 'did not hold'); // 0.89 < 0.9
    assert.equal(atLeast('x', e(0.9, 0), 0.9).verdict, 'held'); // exactly at the threshold with no noise
    assert.equal(atLeast('x', e(Number.NaN), 0.9).verdict, 'not measured');
    assert.match(atLeast('x', e(0.95, 0.02), 0.9).measured, /^95\.0% ± 2\.0%$/);
    assert.match(atLeast('x', e(0.95, 0.02), 0.9).rule, /at least 90\.0%/);
  });

  test('atMost mirrors it', () => {
    assert.equal(atMost('x', e(0.02, 0.01), 0.05).verdict, 'held'); // 0.04 <= 0.05
    assert.equal(atMost('x', e(0.04, 0.01), 0.05).verdict, 'not shown');
    assert.equal(atMost('x', e(0.08, 0.01), 0.05).verdict, 'did not hold'); // 0.06 > 0.05
  });

  test('pairedDifference is the mean and SE of per-prompt differences', () => {
    // differences: 1 - 0, 1 - 1, 0 - 0, 1 - 0 -> [1, 0, 0, 1]: mean 0.5, sd sqrt(1/3), SE sqrt(1/3) / 2
    const d = pairedDifference([true, true, false, true], [false, true, false, false]);
    assert.equal(d.value, 0.5);
    assert.ok(Math.abs(d.stderr - Math.sqrt(1 / 3) / 2) < 1e-15);
    assert.throws(() => pairedDifference([true], []), /1 vs 0 prompts/);
  });

  test('poolEstimates: mean over seeds, SE^2 = mean(SE_i^2) / k + s^2 / k', () => {
    // values 0.6, 0.7, 0.8: mean 0.7, s = 0.1; item SEs 0.03, 0.04, 0.05: mean square 0.0050/3
    const p = poolEstimates([e(0.6, 0.03), e(0.7, 0.04), e(0.8, 0.05)]);
    assert.ok(Math.abs(p.value - 0.7) < 1e-15);
    assert.ok(Math.abs(p.spread - 0.1) < 1e-12);
    const expected = Math.sqrt((0.0009 + 0.0016 + 0.0025) / 3 / 3 + 0.01 / 3);
    assert.ok(Math.abs(p.stderr - expected) < 1e-12, `${p.stderr} vs ${expected}`);
    const m = meanAndStderr([1, 2, 3, 4]); // mean 2.5, sd sqrt(5/3), SE sqrt(5/3) / 2
    assert.ok(Math.abs(m.stderr - Math.sqrt(5 / 3) / 2) < 1e-15);
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

/** Claim inputs where every check clears its threshold by far. */
function strong(): ClaimInputs {
  return {
    seeds: 1,
    base: { format: e(0), competence: e(0.9, 0.02) },
    sft: { examples: 300, accuracy: e(0.7, 0.03), format: e(1), styleRanking: e(0.5, 0.035), styleEntropy: e(0.69, 0.001) },
    sweep: [
      { examples: 10, accuracy: e(0.1, 0.02) },
      { examples: 100, accuracy: e(0.6, 0.03) },
      { examples: 1000, accuracy: e(0.7, 0.03) },
    ],
    rewardModel: e(0.99, 0.005),
    ppo: { styleRate: e(0.97, 0.005), accuracyDrop: e(0, 0.01), kl: e(0.3) },
    dpo: { styleRanking: e(0.98, 0.01), styleEntropy: e(0.1, 0.01), accuracyDrop: e(0.01, 0.01) },
    grpo: { gain: e(0.2, 0.03), required: 0.1, margin: e(0.1, 0.03), target: 0.6, samplesFromSft: 64, samplesFromBase: Infinity, klAtTargetFromSft: 0.05, klAtTargetFromBase: null, klEndFromSft: 0.1, klEndFromBase: 0.01 },
  };
}

describe('gainMargin', () => {
  const flags = (n: number, wrong: number[]): boolean[] => Array.from({ length: n }, (_, i) => !wrong.includes(i));

  test('half of SFT\'s error rate: per prompt g - s/2 - 1/2, by hand', () => {
    // 20 prompts; SFT misses 0 and 1 (error 0.1, so 0.05 is required); GRPO misses 1 only.
    // Per prompt: 18 x 0, prompt 0: 1 - 0 - 1/2 = 0.5, prompt 1: 0 - 0 - 1/2 = -0.5. Mean 0 (GRPO's error 0.05 is exactly half of 0.1);
    // sample variance 0.5 / 19, SE sqrt(0.5 / 19 / 20) = 0.0362738...
    const m = gainMargin(flags(20, [1]), flags(20, [0, 1]));
    assert.ok(Math.abs(m.gain.value - 0.05) < 1e-12);
    assert.ok(Math.abs(m.required - 0.05) < 1e-12);
    assert.ok(Math.abs(m.margin.value) < 1e-12);
    assert.ok(Math.abs(m.margin.stderr - Math.sqrt(0.5 / 19 / 20)) < 1e-12);
  });

  test('a GRPO that fixes every SFT error is shown where a fixed threshold on the paired gain could not show it', () => {
    // 100 prompts, SFT misses 6 (required 3 pts), GRPO none. Margin: 6 x 0.5 / 100 = 0.03;
    // variance (6 x 0.47^2 + 94 x 0.03^2) / 99 = 0.0142424..., SE 0.0119342...: 0.03 - 2 SE = 0.0061 > 0.
    const m = gainMargin(flags(100, []), flags(100, [0, 1, 2, 3, 4, 5]));
    assert.ok(Math.abs(m.margin.value - 0.03) < 1e-12);
    assert.ok(Math.abs(m.margin.stderr - Math.sqrt((6 * 0.47 ** 2 + 94 * 0.03 ** 2) / 99 / 100)) < 1e-12);
    const x = strong();
    x.grpo = { ...x.grpo!, ...m };
    assert.equal(judgeClaims(x)[1].checks[0].verdict, 'held');
    // The paired gain 0.06 has SE 0.0239 (variance (6 x 0.94^2 + 94 x 0.06^2) / 99 / 100): 0.06 - 2 SE = 0.012 < 0.03.
    assert.ok(m.gain.value - 2 * m.gain.stderr < m.required);
  });

  test('+10 pts when SFT errs on 20% or more: per prompt (g - s) - 0.1', () => {
    // 4 prompts: SFT [1,0,1,0] (error 0.5), GRPO [1,1,1,0]: [0,1,0,0] - 0.1 -> mean 0.15, SE = SE of [0,1,0,0] = 0.25.
    const m = gainMargin([true, true, true, false], [true, false, true, false]);
    assert.equal(m.required, 0.1);
    assert.ok(Math.abs(m.margin.value - 0.15) < 1e-12);
    assert.ok(Math.abs(m.margin.stderr - 0.25) < 1e-12);
    assert.throws(() => gainMargin([true], [true, false]), /1 vs 2 prompts/);
  });
});

describe('judgeClaims', () => {
  test('all four hold on strong numbers, with every check named', () => {
    const claims = judgeClaims(strong());
    assert.deepEqual(claims.map((c) => [c.id, c.verdict]), [[1, 'held'], [2, 'held'], [3, 'held'], [4, 'held']]);
    assert.equal(claims[0].checks.length, 5); // base format, competence, SFT format, SFT accuracy, sweep gains
    assert.match(claims[0].checks[4].what, /first interval \(10->100\) minus last \(100->1000\)/);
  });

  test('a difference inside 2 SE is not shown, never held', () => {
    const x = strong();
    x.grpo = { ...x.grpo!, gain: e(0.12, 0.03), margin: e(0.02, 0.03) }; // -0.04 < 0 <= 0.08
    const c2 = judgeClaims(x)[1];
    assert.equal(c2.verdict, 'not shown');
    assert.equal(c2.checks[0].verdict, 'not shown');
  });

  test('a missed threshold makes the claim fail; a missing RL stage leaves it not measured', () => {
    const x = strong();
    x.dpo = { ...x.dpo, styleRanking: e(0.7, 0.02) };
    x.ppo = null;
    x.grpo = null;
    const claims = judgeClaims(x);
    assert.equal(claims[2].verdict, 'did not hold');
    assert.equal(claims[1].verdict, 'not measured');
    assert.equal(claims[3].verdict, 'not measured');
  });

  test('claim 2 samples: never reached from SFT fails when base reaches it; neither reaching is not shown', () => {
    const x = strong();
    x.grpo = { ...x.grpo!, samplesFromSft: Infinity, samplesFromBase: 128 };
    assert.equal(judgeClaims(x)[1].checks[1].verdict, 'did not hold');
    x.grpo = { ...x.grpo!, samplesFromSft: Infinity, samplesFromBase: Infinity };
    assert.equal(judgeClaims(x)[1].checks[1].verdict, 'not shown');
  });

  test('claim 2 KL at the target: lower from SFT holds, higher fails, neither reaching is not shown', () => {
    const x = strong();
    x.grpo = { ...x.grpo!, klAtTargetFromSft: 0.3, klAtTargetFromBase: 0.2, samplesFromBase: 256 };
    assert.equal(judgeClaims(x)[1].checks[2].verdict, 'did not hold');
    x.grpo = { ...x.grpo!, klAtTargetFromSft: 0.1, klAtTargetFromBase: 0.2 };
    assert.equal(judgeClaims(x)[1].checks[2].verdict, 'held');
    x.grpo = { ...x.grpo!, klAtTargetFromSft: null, klAtTargetFromBase: null };
    assert.equal(judgeClaims(x)[1].checks[2].verdict, 'not shown');
  });

  test('without the sweep, claim 1 is judged on what was measured and says the diminishing returns were not', () => {
    const x = strong();
    assert.equal(judgeClaims(x)[0].statement, CLAIMS[1]);
    x.sweep = [x.sweep[x.sweep.length - 1]];
    const c1 = judgeClaims(x)[0];
    assert.equal(c1.verdict, 'held');
    assert.equal(c1.checks.length, 4);
    assert.equal(c1.statement, CLAIM_1_WITHOUT_SWEEP);
    assert.match(c1.statement, /Diminishing returns as SFT data grows: not measured/);
  });

  test('sweep gains that grow are not diminishing returns', () => {
    const x = strong();
    x.sweep = [
      { examples: 10, accuracy: e(0.1, 0.01) },
      { examples: 20, accuracy: e(0.11, 0.01) },
      { examples: 30, accuracy: e(0.5, 0.01) },
    ];
    assert.equal(judgeClaims(x)[0].checks[4].verdict, 'did not hold');
  });

  test('pooled seeds: the spread across seeds widens the SE and can turn held into not shown', () => {
    const a = strong();
    const b = strong();
    const c = strong();
    a.grpo = { ...a.grpo!, gain: e(0.3, 0.01), margin: e(0.2, 0.01) };
    b.grpo = { ...b.grpo!, gain: e(0.02, 0.01), margin: e(-0.08, 0.01) };
    c.grpo = { ...c.grpo!, gain: e(0.16, 0.01), margin: e(0.06, 0.01) };
    const pooled = poolClaimInputs([a, b, c]);
    assert.equal(pooled.seeds, 3);
    assert.ok(Math.abs(pooled.grpo!.gain.value - 0.16) < 1e-12);
    assert.ok(Math.abs(pooled.grpo!.margin.value - 0.06) < 1e-12);
    assert.equal(judgeClaims(pooled)[1].checks[0].verdict, 'not shown'); // margin 0.06 +- ~0.08
  });
});

function row(model: string, sftExamples: number, o: Partial<ModelEvaluation>): ModelEvaluation {
  return {
    model, sftExamples, accuracy: e(0.5), formatRate: e(1), correct: [true, false, true, false], styleRate: e(0.5), styleShare: e(0.5), styleEntropy: e(0.69), styleRanking: e(0.5), correctnessRanking: e(0.9), competence: null,
    example: { prompt: '', reply: '', answer: '' }, ...o,
  };
}

describe('assessClaims on a pipeline result', () => {
  test('reads paired accuracy drops and the GRPO curves off the result', () => {
    const models = [
      row('base', 0, { formatRate: e(0), competence: e(0.9, 0.01), correct: [false, false, false, false] }),
      row('sft-300', 300, {}),
      row('dpo', 300, { correct: [true, false, false, false], styleRanking: e(1), styleEntropy: e(0.05) }),
      row('grpo-from-sft', 300, { correct: [true, true, true, false] }),
      row('grpo-from-base', 0, {}),
    ];
    const r: Omit<PipelineResult, 'claims'> = {
      plan: {} as PipelineResult['plan'], outDir: '/x', backend: 'cpu', baseModel: { dir: '/b', fromScratch: false, competence: e(0.9, 0.01) }, stages: [], models,
      rewardModelAccuracy: e(0.99), dpoImplicitRewardAccuracy: 0.9, rlNote: '', lanes: 1, totalSeconds: 1,
      rl: [
        { stage: 'grpo-sft', points: [{ step: 1, samples: 32, score: 0.5, accuracy: 0.5, kl: 0 }, { step: 2, samples: 64, score: 0.6, accuracy: 0.56, kl: 0.2 }] },
        { stage: 'grpo-base', points: [{ step: 1, samples: 32, score: 0, accuracy: 0, kl: 0.4 }, { step: 2, samples: 64, score: 0, accuracy: 0, kl: 0.6 }] },
      ],
    };
    const claims = assessClaims(r);
    // DPO drop: SFT [1,0,1,0] - DPO [1,0,0,0] = [0,0,1,0]: 0.25 +- 0.25
    assert.equal(claims[2].checks[3].measured, '25.0 pts ± 25.0 pts');
    // GRPO gain: [1,1,1,0] - [1,0,1,0] = [0,1,0,0]: 0.25; SFT's error 0.5, so +10 pts is required (half would be 25):
    // margin [0,1,0,0] - 0.1 = 0.15 +- 0.25; target 0.5 + 0.05 reached at step 2 (64) from SFT, never from base
    assert.equal(claims[1].checks[0].measured, 'gain 25.0 pts ± 25.0 pts, required 10.0 pts; margin 15.0 pts ± 25.0 pts');
    assert.equal(claims[1].checks[1].measured, '64 from SFT vs never from base');
    assert.equal(claims[1].checks[1].verdict, 'held');
    // KL at the target: SFT reached it at step 2 (KL 0.2); base never did (its end: 0.6).
    assert.equal(claims[1].checks[2].measured, 'from SFT 0.200 nats; from base never reached (KL 0.600 nats at its end)');
    assert.equal(claims[1].checks[2].verdict, 'held');
    assert.equal(claims[3].verdict, 'not measured');
    // The step accuracy is over the prompts each run trained on: the check says so when they were filtered.
    assert.equal(claims[1].checks[1].what, 'completions until the step accuracy reaches 55.0% (SFT start + 5 pts)');
    const filtered = assessClaims({ ...r, plan: { grpo: { promptFilter: 'failed' } } as PipelineResult['plan'] });
    assert.equal(filtered[1].checks[1].what, 'completions until the step accuracy (on the prompts each start answers wrong) reaches 55.0% (SFT start + 5 pts)');
  });

  test('claims 2-4 compare against the SFT model DPO started from, not the sweep\'s largest', () => {
    const models = [
      row('base', 0, { formatRate: e(0), competence: e(0.9, 0.01), correct: [false, false, false, false] }),
      row('sft-300', 300, { correct: [true, true, true, false], styleRanking: e(0.55) }),
      row('sft-1000', 1000, { correct: [false, false, false, false], styleRanking: e(0.9) }),
      row('dpo', 300, { correct: [true, true, false, false] }),
    ];
    const r: Omit<PipelineResult, 'claims'> = {
      plan: {} as PipelineResult['plan'], outDir: '/x', backend: 'cpu', baseModel: { dir: '/b', fromScratch: false, competence: e(0.9, 0.01) }, stages: [], models,
      rewardModelAccuracy: e(0.99), dpoImplicitRewardAccuracy: 0.9, rlNote: '', lanes: 1, totalSeconds: 1, rl: [],
    };
    const x = claimInputs(r);
    assert.equal(x.sft.examples, 300);
    assert.equal(x.sft.styleRanking.value, 0.55);
    // DPO drop against sft-300: [1,1,1,0] - [1,1,0,0] = [0,0,1,0] -> 0.25 (against sft-1000 it would be -0.5).
    assert.equal(x.dpo.accuracyDrop.value, 0.25);
    assert.deepEqual(x.sweep.map((p) => p.examples), [300, 1000]);
    assert.throws(() => claimInputs({ ...r, models: models.filter((m) => m.model !== 'sft-300') }), /DPO started from SFT on 300 examples, but the result has no sft-300 evaluation/);
  });
});
