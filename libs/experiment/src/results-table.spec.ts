import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lanesNote, seedSummaryTable } from './results-table';
import type { Estimate, ModelEvaluation, PipelineResult } from './pipeline-types';

const e = (value: number): Estimate => ({ value, stderr: 0 });

function run(seed: number, accuracy: number, entropy: number, extra: string[] = []): PipelineResult {
  const model = (name: string): ModelEvaluation => ({
    model: name, sftExamples: 0, accuracy: e(accuracy), formatRate: e(1), correct: [], styleRate: e(0.5), styleShare: e(0.5), styleEntropy: e(entropy), styleRanking: e(0.5), correctnessRanking: e(1), competence: null, example: { prompt: '', reply: '', answer: '' },
  });
  return { plan: { seed } as PipelineResult['plan'], models: ['base', 'sft-300', ...extra].map(model) } as PipelineResult;
}

describe('seedSummaryTable', () => {
  test('mean ± sample standard deviation over the seeds, for models every seed has', () => {
    // accuracy 0.6 and 0.8: mean 0.7, sd sqrt(0.02) = 0.1414; entropy 0.2 and 0.4: 0.300 ± 0.141
    const t = seedSummaryTable([run(0, 0.6, 0.2, ['ppo']), run(1, 0.8, 0.4)]);
    assert.deepEqual(t.rows.map((r) => r[0]), ['base', 'sft-300']);
    assert.equal(t.rows[0][1], '70.0% ± 14.1%');
    assert.equal(t.rows[0][5], '0.300 ± 0.141');
    assert.match(t.header[1], /mean ± sd over 2 seeds/);
    // One seed: no spread.
    assert.equal(seedSummaryTable([run(0, 0.6, 0.2)]).rows[0][1], '60.0% ± 0.0%');
  });
});

describe('lanesNote', () => {
  test('says how many stages ran at once when more than one, since their seconds then overlap', () => {
    const withLanes = (lanes: number): PipelineResult => ({ ...run(0, 0.5, 0.5), lanes });
    assert.equal(lanesNote([withLanes(1)]), '');
    assert.equal(lanesNote([withLanes(1), withLanes(1)]), '');
    assert.equal(lanesNote([withLanes(2)]), " (up to 2 stages at once; the stages' seconds overlap)");
    assert.equal(lanesNote([withLanes(2), withLanes(1)]), " (up to 2 / 1 stages at once; the stages' seconds overlap)");
  });
});
