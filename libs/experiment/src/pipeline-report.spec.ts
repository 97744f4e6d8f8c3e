import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { barChartSvg, claimCharts, type BarChart, type ClaimChart } from './pipeline-report';
import type { Estimate, ModelEvaluation, PipelineResult } from './pipeline-types';

const est = (value: number, stderr: number): Estimate => ({ value, stderr });

/** A run with the models the claims' plots read; `shift` moves every DPO number so seeds differ. */
function run(seed: number, shift: number): PipelineResult {
  const model = (name: string, sftExamples: number, accuracy: number, ranking: number, rate: number, entropy: number): ModelEvaluation => ({
    model: name,
    sftExamples,
    accuracy: est(accuracy, 0.02),
    formatRate: est(1, 0),
    correct: [],
    styleRate: est(rate, 0.01),
    styleShare: est(rate, 0.01),
    styleEntropy: est(entropy, 0.03),
    styleRanking: est(ranking, 0.04),
    correctnessRanking: est(1, 0),
    competence: null,
    example: { prompt: '', reply: '', answer: '' },
  });
  return {
    plan: { seed } as PipelineResult['plan'],
    rl: [],
    models: [model('base', 0, 0, 0, 0, 0), model('sft-10', 10, 0.01, 0.2, 0.2, 0.5), model('sft-300', 300, 0.94, 0.4, 0.5, 0.6), model('dpo', 300, 0.9 + shift, 0.98 + shift, 0.9 + shift, 0.1 + shift)],
  } as unknown as PipelineResult;
}

describe('claimCharts', () => {
  test("claim 1's sizes are evenly spaced categories, the base model first", () => {
    const sweep = claimCharts([run(0, 0)]).find((c) => c.claim === 1) as ClaimChart;
    assert.equal(sweep.kind, 'lines');
    assert.deepEqual(sweep.x, [0, 1, 2]);
    assert.deepEqual(sweep.xTicks, ['base', '10', '300']);
    assert.deepEqual(sweep.series.find((s) => s.label === 'accuracy')!.values, [0, 0.01, 0.94]);
  });

  test("claim 3's bars: SFT and DPO per measure, pooled over seeds as the claims pool them", () => {
    const bars = claimCharts([run(0, 0), run(1, 0.02)]).find((c) => c.claim === 3) as BarChart;
    assert.equal(bars.kind, 'bars');
    assert.deepEqual(bars.groups, ['style pairs ranked right', 'preferred-style rate', 'style entropy (nats)', 'answer accuracy']);
    assert.deepEqual(bars.bars.map((b) => b.label), ['SFT (sft-300)', 'DPO']);
    // DPO's ranking on the two seeds: 0.98 and 1.00 with item SE 0.04 each. Mean 0.99; the seeds' SE
    // |1.00 - 0.98| / 2 = 0.01; pooled SE^2 = mean(SE_i^2) / k + 0.01^2 = 0.0016 / 2 + 0.0001 = 0.0009.
    const dpo = bars.bars[1];
    assert.ok(Math.abs(dpo.values[0].value - 0.99) < 1e-12);
    assert.ok(Math.abs(dpo.values[0].stderr - 0.03) < 1e-12, `SE ${dpo.values[0].stderr}`);
    assert.deepEqual(dpo.seeds[0].map((v) => Math.round(v * 100) / 100), [0.98, 1]);
    // SFT is the same on both seeds: its SE is the items' alone, 0.04 / sqrt(2).
    assert.ok(Math.abs(bars.bars[0].values[0].stderr - 0.04 / Math.SQRT2) < 1e-12);
  });

  test('no preference-tuned model: no bar chart', () => {
    const r = run(0, 0);
    const without = { ...r, models: r.models.filter((m) => m.model !== 'dpo') } as PipelineResult;
    assert.equal(claimCharts([without]).filter((c) => c.kind === 'bars').length, 0);
  });
});

describe('barChartSvg', () => {
  const chart: BarChart = {
    kind: 'bars',
    claim: 3,
    title: 'A & B <before/after>',
    groups: ['rate', 'entropy (nats)'],
    bars: [
      { label: 'SFT', values: [est(0.5, 0.05), est(0.6, 0)], seeds: [[0.5], [0.6]] },
      { label: 'DPO', values: [est(0.95, 0.05), est(0.1, 0.01)], seeds: [[0.95], [0.1]] },
    ],
  };
  const svg = barChartSvg(chart);
  const rects = [...svg.matchAll(/<rect class="bar" data-group="([^"]*)" data-bar="([^"]*)" data-value="([^"]*)" data-stderr="([^"]*)" x="[^"]*" y="([^"]*)" width="[^"]*" height="([^"]*)"/g)];

  test('bar heights are proportional to the values on a 0-1 axis (plot 210 px tall)', () => {
    assert.equal(rects.length, 4);
    for (const [, , , value, , , height] of rects) assert.ok(Math.abs(Number(height) - 210 * Number(value)) <= 0.06, `${value}: ${height}`);
    assert.deepEqual(rects.map((m) => `${m[1]}/${m[2]}`), ['rate/SFT', 'rate/DPO', 'entropy (nats)/SFT', 'entropy (nats)/DPO']);
  });

  test('whiskers span ± 2 SE, clipped at the axis top; none without an SE', () => {
    const whiskers = [...svg.matchAll(/<path class="whisker" d="M[\d.]+ ([\d.]+)V([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    assert.equal(whiskers.length, 3, 'SFT entropy has SE 0');
    // SFT rate 0.5 ± 0.1: from y(0.4) = 250 - 84 = 166 to y(0.6) = 250 - 126 = 124.
    assert.deepEqual(whiskers[0], [166, 124]);
    // DPO rate 0.95 ± 0.1: the top, 1.05, is clipped to the axis' 1.0 (y = 40).
    assert.deepEqual(whiskers[1], [250 - 0.85 * 210, 40]);
  });

  test('values are labelled as rates or nats; text is escaped; one seed draws no seed dots', () => {
    assert.match(svg, />95\.0%</);
    assert.match(svg, />0\.100</);
    assert.match(svg, /A &amp; B &lt;before\/after&gt;/);
    assert.doesNotMatch(svg, /<before/);
    assert.doesNotMatch(svg, /class="seed"/);
    const seeded = barChartSvg({ ...chart, bars: chart.bars.map((b) => ({ ...b, seeds: b.seeds.map((s) => [s[0], s[0]]) })) });
    assert.equal((seeded.match(/class="seed"/g) ?? []).length, 8);
  });
});
