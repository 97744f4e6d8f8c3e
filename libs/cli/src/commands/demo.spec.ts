import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { PipelineResult } from '@posttrain/experiment';
import { captureIO } from '../test-io';
import { demoCommand } from './demo';

const CHROMIUM = '/usr/bin/chromium';
const STAGES = ['task', 'pretrain', 'eval-base', 'sft-48', 'eval-sft-48', 'rm', 'dpo', 'eval-dpo', 'grpo-sft', 'grpo-base', 'eval-grpo'];

describe('posttrain demo --quick', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'demo-')), 'run');
  let result: PipelineResult;

  test('runs every stage end to end and writes results.json, results.md and report.html', async () => {
    const io = captureIO();
    const code = await demoCommand.run(['--quick', '--out', out, '--seed', '3'], io);
    assert.equal(code, 0, io.err());
    for (const f of ['results.json', 'results.md', 'report.html', 'task/manifest.json', 'runs/pretrain/model/config.json', 'runs/sft-48/model/model.safetensors', 'runs/rm/model/config.json', 'runs/dpo/report.html']) {
      assert.ok(existsSync(join(out, f)), `${f} exists`);
    }
    result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as PipelineResult;
    assert.deepEqual(result.stages.map((s) => s.stage), STAGES);
    assert.deepEqual(result.models.map((m) => m.model), ['base', 'sft-48', 'dpo', 'grpo-from-sft', 'grpo-from-base']);
    for (const m of result.models) for (const v of [m.accuracy, m.formatRate, m.preferenceAccuracy, m.preferenceAccuracyPerToken]) assert.ok(v >= 0 && v <= 1, `${m.model}: ${v}`);
    // 16 eval pairs: every accuracy is a multiple of 1/16.
    for (const m of result.models) assert.equal((m.preferenceAccuracy * 16) % 1, 0);
    assert.equal(result.plan.seed, 3);
    assert.deepEqual(result.claims.map((c) => c.id), [1, 2, 3]);
    // GRPO ran over real services: 2 steps of 2 prompts x 2 samples each, so 4 and 8 samples.
    assert.deepEqual(result.rlStages, ['grpo-sft', 'grpo-base']);
    assert.deepEqual(result.rl!.fromSft.map((p) => p.samples), [4, 8]);
    assert.deepEqual(result.rl!.fromBase.map((p) => p.samples), [4, 8]);
    for (const p of [...result.rl!.fromSft, ...result.rl!.fromBase]) assert.ok(Number.isFinite(p.score) && Number.isFinite(p.kl), JSON.stringify(p));
    assert.match(result.claims[1].measured, /^GRPO step rewards from SFT: \S+ \S+; from base: \S+ \S+;/, 'claim 2 reports both GRPO curves');
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    for (const s of STAGES) assert.match(md, new RegExp(`\\| ${s} \\|`), `results.md has stage ${s}`);
    // The terminal output ends with the table, the claims and the report's path; progress went to stderr.
    assert.match(io.out(), /model\s+SFT examples\s+accuracy/);
    assert.match(io.out(), /claim 2: (held|did not hold|not measured)\. GRPO step rewards from SFT/);
    assert.ok(io.out().includes(`report:  ${join(out, 'report.html')}`));
    assert.match(io.err(), /\[11\/11\] eval-grpo/);
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
    const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`file://${path}`);
      await page.waitForSelector('body[data-charts]');
      const got = (await page.evaluate(`(() => ({
        metrics: [...document.querySelectorAll('.chart')].map((e) => e.getAttribute('data-metric')),
        canvases: document.querySelectorAll('.chart canvas').length,
        models: document.querySelectorAll('#models tr').length,
        stages: [...document.querySelectorAll('#stages tr td:first-child')].map((e) => e.textContent),
        claims: document.querySelectorAll('#claims li').length,
      }))()`)) as { metrics: string[]; canvases: number; models: number; stages: string[]; claims: number };
      assert.deepEqual(errors, []);
      for (const s of ['grpo-sft', 'grpo-base']) assert.ok(got.metrics.includes(`${s}/objective/scores`), `a ${s}/objective/scores chart`);
      for (const s of ['pretrain', 'sft-48', 'rm', 'dpo']) assert.ok(got.metrics.includes(`${s}/train/loss`), `a ${s}/train/loss chart in ${got.metrics.join(', ')}`);
      assert.ok(got.metrics.includes('dpo/rewards/accuracies'));
      assert.equal(got.canvases, got.metrics.length);
      assert.equal(got.models, 6, 'header + base, sft-48, dpo, grpo-from-sft, grpo-from-base');
      assert.deepEqual(got.stages, STAGES);
      assert.equal(got.claims, 3);
    } finally {
      await browser.close();
    }
  });
});
