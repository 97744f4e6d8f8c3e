import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PipelineResult } from '@posttrain/experiment';
import { pipelinePlan, readCardRecord } from '@posttrain/experiment';
import { captureIO } from '../test-io';
import { experimentCommand } from './experiment';

describe('posttrain experiment --quick', () => {
  let inProcess: PipelineResult[] = [];
  let inProcessOut = '';

  test('--from-scratch rebuilds a toy base, then every seed runs the SFT sweep; claims are pooled over the seeds', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'experiment-')), 'run');
    const io = captureIO();
    assert.equal(await experimentCommand.run(['--quick', '--out', out, '--seeds', '0,1', '--from-scratch', '--jobs', '1', '--parallel-stages', '2', '--no-dashboard'], io), 0, io.err());
    const seed0 = JSON.parse(readFileSync(join(out, 'seed-0', 'results.json'), 'utf8')) as PipelineResult;
    const seed1 = JSON.parse(readFileSync(join(out, 'seed-1', 'results.json'), 'utf8')) as PipelineResult;
    assert.equal(seed0.plan.name, 'experiment');
    assert.equal(seed0.lanes, 2);
    // The base is rebuilt once, by the first seed, with its model card; the second seed starts from it.
    assert.deepEqual(seed0.stages.map((s) => s.stage).slice(0, 5), ['task', 'pretrain', 'eval-base', 'sft-16', 'eval-sft-16']);
    assert.deepEqual(seed1.stages.map((s) => s.stage).slice(0, 4), ['task', 'eval-base', 'sft-16', 'eval-sft-16']);
    assert.equal(seed1.baseModel.dir, seed0.baseModel.dir);
    const card = readCardRecord(readFileSync(join(seed0.baseModel.dir, 'README.md'), 'utf8'));
    assert.deepEqual(card.plan, pipelinePlan('experiment', { quick: true }).base);
    assert.equal(card.command, 'posttrain experiment --from-scratch --quick');
    assert.deepEqual(seed0.models.filter((m) => m.model.startsWith('sft-')).map((m) => m.sftExamples), [16, 48]);
    const pooled = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { claims: { id: number; verdict: string }[]; pooled: { seeds: number }; runs: PipelineResult[] };
    assert.equal(pooled.pooled.seeds, 2);
    assert.deepEqual(pooled.runs.map((r) => r.plan.seed), [0, 1]);
    assert.deepEqual(pooled.claims.map((c) => c.id), [1, 2, 3, 4]);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /\(2 seeds\)/);
    assert.match(html, /accuracy, seed 1/);
    assert.match(io.out(), /claims, 2 seeds pooled/);
    inProcess = pooled.runs;
    inProcessOut = out;
  });

  test('--jobs 2 runs the seeds as parallel processes with the same numbers (each seed one stage at a time, where the run above ran two), and pools them the same way', async () => {
    assert.equal(inProcess.length, 2, 'the in-process run above ran');
    const out = join(mkdtempSync(join(tmpdir(), 'experiment-')), 'run');
    const io = captureIO();
    assert.equal(await experimentCommand.run(['--quick', '--out', out, '--seeds', '0,1', '--from-scratch', '--jobs', '2', '--parallel-stages', '1', '--no-dashboard'], io), 0, io.err());
    assert.match(io.err(), /2 seeds, 2 at a time, each in its own process/);
    // Seed 0 rebuilt the base alone first; seed 1 started from it.
    assert.ok(io.err().indexOf('[seed 0] ') < io.err().indexOf('[seed 1] '));
    const pooled = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { claims: { id: number; verdict: string; checks: { measured: string }[] }[]; pooled: { seeds: number }; runs: PipelineResult[] };
    assert.equal(pooled.pooled.seeds, 2);
    assert.equal(pooled.runs[1].baseModel.dir, pooled.runs[0].baseModel.dir);
    assert.deepEqual(pooled.runs[1].stages.map((s) => s.stage).slice(0, 2), ['task', 'eval-base']);
    assert.deepEqual(pooled.runs.map((r) => r.lanes), [1, 1]);
    // Every model's numbers, the reward model's and the RL curves, and the pooled claims, are those of the in-process run.
    const numbers = (runs: PipelineResult[]) => runs.map((r) => [r.models.map((m) => [m.model, m.accuracy, m.formatRate, m.styleRate, m.styleRanking, m.correctnessRanking, m.styleEntropy]), r.rewardModelAccuracy, r.rl]);
    assert.deepEqual(numbers(pooled.runs), numbers(inProcess));
    const inProcessClaims = JSON.parse(readFileSync(join(inProcessOut, 'results.json'), 'utf8')) as typeof pooled;
    assert.deepEqual(pooled.claims.map((c) => [c.verdict, c.checks.map((k) => k.measured)]), inProcessClaims.claims.map((c) => [c.verdict, c.checks.map((k) => k.measured)]));
    assert.match(io.out(), /claims, 2 seeds pooled/);
  });
});
