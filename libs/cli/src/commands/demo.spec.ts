import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { PipelineResult } from '@posttrain/experiment';
import { captureIO } from '../test-io';
import { defaultParallelStages, demoCommand } from './demo';

const CHROMIUM = '/usr/bin/chromium';
const STAGES = ['task', 'eval-base', 'sft-48', 'eval-sft-48', 'rm', 'ppo', 'eval-ppo', 'dpo', 'eval-dpo', 'grpo-sft', 'eval-grpo-sft', 'grpo-base', 'eval-grpo-base'];

describe('posttrain demo --quick', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'demo-')), 'run');
  let result: PipelineResult;

  test('runs every stage end to end and writes results.json, results.md and report.html', async () => {
    const io = captureIO();
    const code = await demoCommand.run(['--quick', '--out', out, '--seed', '3'], io);
    assert.equal(code, 0, io.err());
    for (const f of ['results.json', 'results.md', 'report.html', 'task/manifest.json', 'task/preference-correct-eval.jsonl', 'runs/sft-48/model/model.safetensors', 'runs/rm/model/config.json', 'runs/ppo/report.html', 'runs/dpo/report.html']) {
      assert.ok(existsSync(join(out, f)), `${f} exists`);
    }
    // No pretraining: the run starts from the shipped base model.
    assert.ok(!existsSync(join(out, 'base')), 'no base model rebuilt');
    result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as PipelineResult;
    assert.equal(result.baseModel.fromScratch, false);
    assert.match(result.baseModel.dir, /models\/tiny-arith-base$/);
    assert.deepEqual(result.stages.map((s) => s.stage), STAGES);
    assert.deepEqual(result.models.map((m) => m.model), ['base', 'sft-48', 'ppo', 'dpo', 'grpo-from-sft', 'grpo-from-base']);
    for (const m of result.models) {
      for (const v of [m.accuracy, m.formatRate, m.styleRate, m.styleRanking, m.correctnessRanking]) assert.ok(v.value >= 0 && v.value <= 1 && v.stderr >= 0, `${m.model}: ${JSON.stringify(v)}`);
      assert.ok(m.styleEntropy.value >= 0 && m.styleEntropy.value <= Math.log(2) + 1e-9, `${m.model}: style entropy ${m.styleEntropy.value}`);
      // 16 eval pairs: every ranking is a multiple of 1/16; 8 eval prompts: accuracy a multiple of 1/8.
      assert.equal((m.styleRanking.value * 16) % 1, 0);
      assert.equal((m.accuracy.value * 8) % 1, 0);
      assert.equal(m.correct.length, 8);
    }
    // The base model's plain-text competence is measured on the held-out prose prompts (8 at --quick).
    assert.ok(result.models[0].competence !== null && (result.models[0].competence.value * 8) % 1 === 0);
    assert.equal(result.plan.seed, 3);
    assert.deepEqual(result.claims.map((c) => c.id), [1, 2, 3, 4]);
    for (const c of result.claims) assert.ok(['held', 'did not hold', 'not shown'].includes(c.verdict), `claim ${c.id}: ${c.verdict}`);
    // PPO and GRPO ran over real services: PPO 2 steps of 4 prompts, GRPO 2 steps of 2 prompts x 2 samples.
    assert.deepEqual(result.rl.map((c) => [c.stage, c.points.map((p) => p.samples)]), [['ppo', [4, 8]], ['grpo-sft', [4, 8]], ['grpo-base', [4, 8]]]);
    for (const c of result.rl) for (const p of c.points) assert.ok(Number.isFinite(p.score) && Number.isFinite(p.kl), JSON.stringify(p));
    for (const c of result.rl.filter((x) => x.stage.startsWith('grpo'))) for (const p of c.points) assert.ok(p.accuracy !== null && p.accuracy >= 0 && p.accuracy <= 1);
    // GRPO trains on the RL prompts its start model answers wrong: the kept lines are RL prompts, byte for byte.
    const rlPrompts = new Set(readFileSync(join(out, 'task/prompts.jsonl'), 'utf8').split('\n').filter(Boolean));
    for (const stage of ['grpo-sft', 'grpo-base']) {
      const m = result.stages.find((s) => s.stage === stage)!.metrics;
      assert.ok(m.prompts_kept >= 0 && m.prompts_kept <= 4 && m.prompts_scanned >= m.prompts_kept, `${stage}: ${JSON.stringify(m)}`);
      const keptFile = join(out, `runs/${stage}-prompts.jsonl`);
      if (m.prompts_kept === 0) continue;
      const kept = readFileSync(keptFile, 'utf8').split('\n').filter(Boolean);
      assert.equal(kept.length, m.prompts_kept);
      for (const line of kept) assert.ok(rlPrompts.has(line), `${stage}: ${line} is an RL prompt`);
    }
    // The base model answers nothing in the chat format, so its first batch already holds the 4 prompts GRPO needs.
    assert.equal(result.stages.find((s) => s.stage === 'grpo-base')!.metrics.prompts_kept, 4);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    for (const s of STAGES) assert.match(md, new RegExp(`\\| ${s} \\|`), `results.md has stage ${s}`);
    // The claims come first in results.md, each with its checks.
    assert.ok(md.indexOf('### Claim 1') < md.indexOf('## Models'));
    // The terminal output ends with the table, the claims and the report's path; progress went to stderr.
    assert.match(io.out(), /model\s+SFT examples\s+accuracy/);
    assert.match(io.out(), /claim 4: (held|did not hold|not shown)\. RLHF/);
    assert.match(io.out(), /base model plain-text competence: /);
    assert.ok(io.out().includes(`report:  ${join(out, 'report.html')}`));
    // Stages that do not need each other ran at once, on the cores there are (at most 4); the progress counts them as they start.
    assert.equal(result.lanes, defaultParallelStages(1, availableParallelism()));
    assert.match(io.err(), /\[13\/13\] eval-/);
    assert.equal((io.err().match(/^\[\d+\/13\] /gm) ?? []).length, 13);
    // The live dashboard's address comes first on stderr (each stage a run while it runs).
    assert.match(io.err(), /^posttrain demo --quick: writing to .*\nposttrain demo: live dashboard at http:\/\/127\.0\.0\.1:\d+\/\n/);
  });

  test('refuses an output directory that already holds a run', async () => {
    const io = captureIO();
    await assert.rejects(demoCommand.run(['--quick', '--out', out], io), /already exists and is not empty/);
  });

  test('report.html opens offline in headless Chromium with the curves of every training stage', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} is not installed` }, async () => {
    const path = join(out, 'report.html');
    const html = readFileSync(path, 'utf8');
    assert.doesNotMatch(html, /<script[^>]+src=/);
    const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
    const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`file://${path}`);
      await page.waitForSelector('body[data-claim-charts]');
      const got = (await page.evaluate(`(() => ({
        metrics: [...document.querySelectorAll('.chart')].map((e) => e.getAttribute('data-metric')),
        canvases: document.querySelectorAll('.chart canvas').length,
        claimSections: [...document.querySelectorAll('section.claim')].map((e) => e.id),
        claimCanvases: [...document.querySelectorAll('section.claim')].map((e) => e.querySelectorAll('canvas, svg.bars').length),
        claim3Bars: [...document.querySelectorAll('#claim-3 svg.bars rect.bar')].map((e) => e.getAttribute('data-bar') + ': ' + e.getAttribute('data-group')),
        firstClaimBeforeModels: document.querySelector('section.claim').compareDocumentPosition(document.querySelector('#models-3')) === 4,
        models: document.querySelectorAll('#models-3 tr').length,
        stages: [...document.querySelectorAll('#stages-3 tr td:first-child')].map((e) => e.textContent),
      }))()`)) as { metrics: string[]; canvases: number; claimSections: string[]; claimCanvases: number[]; claim3Bars: string[]; firstClaimBeforeModels: boolean; models: number; stages: string[] };
      assert.deepEqual(errors, []);
      // One section per claim, first on the page, each with at least one drawn plot.
      assert.deepEqual(got.claimSections, ['claim-1', 'claim-2', 'claim-3', 'claim-4']);
      for (const [i, n] of got.claimCanvases.entries()) assert.ok(n >= 1, `claim ${i + 1} has ${n} plots`);
      // Claim 3's before-and-after is a bar chart in SVG: SFT and DPO on each of its four measures.
      assert.equal(got.claim3Bars.length, 8);
      assert.ok(got.claim3Bars.includes('DPO: style pairs ranked right'), got.claim3Bars.join(', '));
      assert.ok(got.firstClaimBeforeModels, 'the claims come before the model table');
      for (const s of ['ppo', 'grpo-sft', 'grpo-base']) assert.ok(got.metrics.includes(`${s}/objective/scores`), `a ${s}/objective/scores chart`);
      for (const s of ['sft-48', 'rm', 'dpo']) assert.ok(got.metrics.includes(`${s}/train/loss`), `a ${s}/train/loss chart in ${got.metrics.join(', ')}`);
      assert.ok(got.metrics.includes('dpo/rewards/accuracies'));
      assert.equal(got.canvases, got.metrics.length);
      assert.equal(got.models, 7, 'header + base, sft-48, ppo, dpo, grpo-from-sft, grpo-from-base');
      assert.deepEqual(got.stages, STAGES);
    } finally {
      await browser.close();
    }
  });
});
