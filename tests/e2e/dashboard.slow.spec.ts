import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { initBackend } from '@posttrain/backend';
import { startLocalServices, type LocalServiceGroup } from '@posttrain/cli';
import { RunSpec, RunState, TrainerService } from '@posttrain/proto';
import { createClient } from '@posttrain/rpc';
import { writeTaskFiles } from '@posttrain/task';
import { writeE2eModel } from './e2e-model';

// The Trainer's live dashboard as a user sees it: the service started with
// --dashboard-port, a real policy sampler and reward service for its health
// panel, an SFT run started over gRPC, and the page open in headless
// Chromium while the run trains; then a two-step GRPO run over the same
// sampler and reward service, whose generations show in "Recent samples". POSTTRAIN_DASHBOARD_SCREENSHOT=<png> saves
// the finished page (docs/images/dashboard.png is made this way).
const CHROMIUM = '/usr/bin/chromium';
const STEPS = 40;

describe('Trainer dashboard in headless Chromium', { timeout: 300_000, skip: !existsSync(CHROMIUM) && `${CHROMIUM} is not installed` }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-dashboard-e2e-'));
  const model = join(dir, 'models', 'tiny');
  const data = join(dir, 'data');
  const groups: LocalServiceGroup[] = [];
  let browser: BrowserContext | undefined;

  before(async () => {
    await initBackend({ backend: 'cpu', logger: { info: () => undefined } });
    await writeE2eModel(model, 5);
    await writeTaskFiles(data, { seed: 3, sftSizes: [40], corpusSize: 10, preferenceSize: 8, promptsSize: 4, evalSize: 4 });
  });
  after(async () => {
    await browser?.close();
    for (const g of groups.reverse()) await g.stop(2_000);
    rmSync(dir, { recursive: true, force: true });
  });

  const spec: RunSpec = {
    runId: 'dash-sft',
    name: 'tiny <sft> & co',
    baseModelDir: model,
    outputDir: '',
    dataset: { paths: [join(data, 'sft-40.jsonl')], format: 0, evalPaths: [], evalFraction: 0, maxSamples: 0 },
    seed: 11,
    maxSteps: STEPS,
    maxEpochs: 0,
    batchSize: 4,
    gradAccumulationSteps: 0,
    optimizer: { learningRate: 0.003, schedule: 0, warmupSteps: 0, minLearningRate: 0, weightDecay: 0, maxGradNorm: 1, warmupRatio: 0 },
    checkpointEverySteps: 20,
    keepCheckpoints: 0,
    resume: false,
    evalEverySteps: 0,
    logEverySteps: 1,
    stage: { $case: 'sft', value: { assistantOnlyLoss: true, completionOnlyLoss: true, packing: false, maxLength: 128 } },
  } as RunSpec;

  const grpoSpec = RunSpec.fromPartial({
    runId: 'dash-grpo',
    name: 'tiny grpo',
    baseModelDir: model,
    dataset: { paths: [join(data, 'prompts.jsonl')] },
    seed: 12,
    maxSteps: 2,
    batchSize: 4,
    optimizer: { learningRate: 0.003, maxGradNorm: 1 },
    logEverySteps: 1,
    stage: {
      $case: 'grpo',
      value: {
        rewardComponents: [{ name: 'has_digit', weight: 1, rule: { $case: 'regex', value: { pattern: '[0-9]', flags: '', fullMatch: false, negate: false } } }],
        promptsPerStep: 2,
        groupSize: 2,
        updatesPerBatch: 1,
        minibatchSize: 4,
        sampling: { maxNewTokens: 8, temperature: 1 },
      },
    },
  });

  test('a curve gains points while an SFT run trains, the run ends SUCCEEDED on the page, the services show their health, and a GRPO run shows its samples', async () => {
    const env = { POSTTRAIN_LOG_LEVEL: 'warn' };
    const serving = await startLocalServices(
      [
        { name: 'policy-sampler', label: 'policy-sampler', args: ['--model', model], env },
        { name: 'reward', label: 'reward', args: [], env },
      ],
      { host: '127.0.0.1', startupTimeoutMs: 120_000 },
    );
    groups.push(serving);
    const addr = (name: string) => serving.services.find((s) => s.name === name)!.address;
    const trainerGroup = await startLocalServices(
      [{ name: 'trainer', label: 'trainer', args: ['--runs-dir', join(dir, 'runs'), '--models-root', join(dir, 'models'), '--data-root', data, '--dashboard-port', '0', '--dashboard-health-interval-ms', '500', '--sampler-addresses', addr('policy-sampler'), '--reward-address', addr('reward')], env }],
      { host: '127.0.0.1', startupTimeoutMs: 120_000 },
    );
    groups.push(trainerGroup);
    const trainer = trainerGroup.services[0];
    assert.match(trainer.dashboardUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/, 'the trainer logs its dashboard address');

    const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    const outside: string[] = [];
    page.on('request', (r) => { if (!r.url().startsWith(trainer.dashboardUrl!)) outside.push(r.url()); });
    await page.goto(trainer.dashboardUrl!);
    await page.waitForSelector('#conn[data-live="true"]', { timeout: 30_000 });

    const client = createClient(TrainerService, trainer.address, { maxAttempts: 1, deadlineMs: 240_000 });
    try {
      await client.unary('startRun', { spec });
      const chart = '[data-metric="train/loss"]';
      await page.waitForSelector(`${chart}[data-points]`, { timeout: 120_000 });
      const first = Number(await page.getAttribute(chart, 'data-points'));
      const stateThen = await page.getAttribute('tr[data-run-id="dash-sft"] [data-state]', 'data-state');
      assert.equal(stateThen, 'RUNNING', `the first points arrived while the run was running (${first} of ${STEPS})`);
      assert.ok(first < STEPS, `the curve had ${first} of ${STEPS} points when first drawn`);
      // Polled through the DOM attribute, not waitForFunction: a string predicate is an eval the page's CSP refuses.
      const waitForPoints = async (ok: (points: number) => boolean, what: string, timeoutMs: number): Promise<void> => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const points = Number(await page.getAttribute(chart, 'data-points'));
          if (ok(points)) return;
          if (Date.now() > deadline) throw new Error(`the curve has ${points} points after ${timeoutMs} ms, expected ${what}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      await waitForPoints((points) => points > first, `more than ${first}`, 120_000);

      await page.waitForSelector('tr[data-run-id="dash-sft"] [data-state="SUCCEEDED"]', { timeout: 240_000 });
      assert.equal((await client.unary('getRun', { runId: 'dash-sft' })).state, RunState.SUCCEEDED);
      await waitForPoints((points) => points === STEPS, `${STEPS}`, 10_000);
      // The name is shown as text, not markup.
      assert.equal(await page.textContent('tr[data-run-id="dash-sft"] td:nth-child(2)'), 'tiny <sft> & co');
      assert.match((await page.textContent('#latest')) ?? '', new RegExp(`step ${STEPS}[\\s\\S]*train/loss`));
      const canvas = (await page.evaluate(`(() => {
        const c = document.querySelector('${chart} canvas');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
        return painted;
      })()`)) as number;
      assert.ok(canvas > 100, `the loss curve's canvas is drawn (${canvas} painted pixels)`);

      // A short GRPO run (the trainer's own sampler and reward service; beta 0: no reference): its samples appear as rows.
      await client.unary('startRun', { spec: grpoSpec });
      await page.waitForSelector('#samples tbody tr[data-run-id="dash-grpo"]', { timeout: 180_000 });
      const samples = await page.$$eval('#samples tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
      assert.ok(samples.length >= 1 && samples.length <= 8, `${samples.length} sample rows`);
      const [runId, step, prompt, , reward] = samples[0];
      assert.equal(runId, 'dash-grpo');
      assert.ok(Number(step) >= 1, `step ${step}`);
      assert.ok(prompt.length > 0, 'the prompt text is shown');
      assert.ok(reward === '0' || reward === '1', `the has-digit reward is 0 or 1, got ${reward}`);
      assert.equal(await page.isHidden('#no-samples'), true);
      await page.waitForSelector('tr[data-run-id="dash-grpo"] [data-state="SUCCEEDED"]', { timeout: 180_000 });

      await page.waitForSelector('#services [data-health="SERVING"]', { timeout: 30_000 });
      const rows = await page.$$eval('#services tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 4).map((td) => td.textContent)));
      assert.deepEqual(rows.map((r) => [r[0], r[2]]), [['policy-sampler', 'SERVING'], ['reward', 'SERVING']]);
      assert.ok(Number(rows[0][3]) >= 1, `the sampler reports the weights the GRPO run pushed (version ${rows[0][3]})`);

      const shot = process.env.POSTTRAIN_DASHBOARD_SCREENSHOT;
      if (shot) {
        // The picture shows the SFT run's 40-step curves (click its row) above the GRPO run's samples.
        await page.click('tr[data-run-id="dash-sft"]');
        await page.waitForSelector('[data-metric="train/loss"][data-points="40"]', { timeout: 10_000 });
        mkdirSync(dirname(shot), { recursive: true });
        await page.screenshot({ path: shot, fullPage: true });
      }
      assert.deepEqual(outside, [], 'the page loads nothing from elsewhere');
      assert.deepEqual(errors, []);
    } finally {
      client.close();
    }

    // The trainer's graceful shutdown closes the dashboard: the page loses its stream.
    await trainerGroup.stop(5_000);
    groups.splice(groups.indexOf(trainerGroup), 1);
    await page.waitForSelector('#conn[data-live="false"]', { timeout: 15_000 });
  });
});
