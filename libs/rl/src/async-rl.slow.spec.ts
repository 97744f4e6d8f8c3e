import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initBackend } from '@posttrain/backend';
import { createLogger } from '@posttrain/telemetry';
import { parseRunConfig } from '@posttrain/training';
import { resolveRlRunConfig } from './rl-run-config';
import type { LedgerEntry } from './rollout-ledger';
import { runRl } from './run-rl';
import { HAS_DIGIT, rewardComponentsJson, rlRawConfig, startService, writePrompts, writeTinyPolicy } from './test-support';
import type { ServiceProcess } from './test-support';

// Asynchronous GRPO (max_staleness >= 1): generation runs ahead of training on a sampler,
// the reference and the reward service as separate processes on loopback.
const repoRoot = resolve(__dirname, '..', '..', '..');

describe('asynchronous RL', { timeout: 900_000 }, () => {
  let model: string;
  let prompts: string;
  let outputDir: string;
  let sampler: ServiceProcess;
  let reference: ServiceProcess;
  let reward: ServiceProcess;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

  before(async () => {
    await initBackend({ logger: createLogger({ service: 'test', level: 'warn' }) });
    [model, prompts, outputDir] = await Promise.all([writeTinyPolicy(4), writePrompts(64), mkdtemp(join(tmpdir(), 'posttrain-async-rl-'))]);
    [sampler, reference, reward] = await Promise.all([startService('policy-sampler', ['--model', model, '--max-new-tokens', '16']), startService('reference', ['--model', model]), startService('reward', [])]);
  });
  after(async () => {
    await Promise.all([sampler, reference, reward].filter(Boolean).map((s) => s.kill()));
  });

  const section = (extra: Record<string, unknown>) => ({
    services: { sampler_addresses: [sampler.address], reference_address: reference.address, reward_address: reward.address },
    reward_components: rewardComponentsJson(HAS_DIGIT),
    prompts_per_step: 4,
    num_generations: 4,
    num_iterations: 2,
    mini_batch_size: 8,
    beta: 0.02,
    temperature: 1,
    max_completion_length: 8,
    max_staleness: 1,
    ...extra,
  });
  const grpoRaw = (runId: string, maxSteps: number, extra: Record<string, unknown> = {}, common: { checkpointEvery?: number; resume?: boolean } = {}) =>
    rlRawConfig({ runId, outputDir, model, prompts, maxSteps, learningRate: 3e-3, ...common }, 'grpo', section(extra));
  const grpo = (...args: Parameters<typeof grpoRaw>) => resolveRlRunConfig(parseRunConfig(grpoRaw(...args), 'grpo spec config'));
  const ledgerOf = (runDir: string): LedgerEntry[] =>
    readFileSync(join(runDir, 'rollout-ledger.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as LedgerEntry);

  test('max_staleness 1: rollouts run one step ahead and are never older than 1 version; fresh ones match the trainer within 1e-4, stale ones show the gap; the reward rises', async () => {
    const steps: Record<string, number>[] = [];
    const result = await runRl(grpo('async-learns', 16, { importance_sampling_correction: true }), { callbacks: { onStep: (e) => steps.push(e.metrics) } });
    assert.equal(result.status, 'completed');
    const scores = steps.map((m) => m['objective/scores']);
    console.log('async GRPO objective/scores by step:', scores.map((s) => s.toFixed(2)).join(' '));
    console.log('staleness 0/1 by step:', steps.map((m) => `${m['rollout/staleness_0']}/${m['rollout/staleness_1']}`).join(' '));
    console.log('gap (all tokens) by step:', steps.map((m) => m['rollout/logprob_diff_all'].toExponential(1)).join(' '));
    for (const m of steps) {
      assert.equal(m['rollout/staleness_older'], 0, 'no rollout older than max_staleness');
      assert.equal(m['rollout/dropped'], 0);
      assert.equal(m['rollout/count'], 16);
      assert.ok(m['rollout/logprob_diff'] < 1e-4, `fresh rollouts: |log pi_trainer - log pi_sampler| = ${m['rollout/logprob_diff']}`);
      assert.ok(m['rollout/importance_weight_mean'] > 0 && m['rollout/importance_weight_mean'] <= 2, `TIS weights are capped at 2: ${m['rollout/importance_weight_mean']}`);
    }
    // Every step after the first consumes rollouts sent before the previous update, so most are one version old.
    const staleShare = mean(steps.slice(1).map((m) => m['rollout/staleness_1'] / m['rollout/count']));
    assert.ok(staleShare > 0.5, `share of one-version-old rollouts after step 1: ${staleShare}`);
    // Where the weights differ the gap is far above numerics: the stale rollouts' tokens.
    assert.ok(mean(steps.slice(1).map((m) => m['rollout/logprob_diff_all'])) > 1e-3, 'the gap grows when the sampler holds older weights');
    assert.ok(mean(scores.slice(-4)) > mean(scores.slice(0, 4)) + 0.15, `mean reward of the last 4 steps should exceed the first 4 by 0.15: ${scores.join(' ')}`);
    // The ledger: each step's 4 prompts consumed, with the versions they were sampled with.
    const ledger = ledgerOf(result.runDir);
    assert.deepEqual(ledger.map((e) => e.step), Array.from({ length: 16 }, (_, i) => i + 1));
    for (const e of ledger) assert.equal(e.consumed.length + e.dropped.length, 4);
  });

  test('an asynchronous run cancelled mid-run and resumed consumes every prompt exactly once (in-flight prompts are sent again, never trained twice)', async () => {
    const ac = new AbortController();
    const first = await runRl(grpo('async-resume', 8, { max_staleness: 2 }, { checkpointEvery: 2 }), {
      signal: ac.signal,
      callbacks: { onStep: (e) => { if (e.step === 3) ac.abort(); } },
    });
    assert.equal(first.status, 'cancelled');
    assert.equal(first.step, 3);
    const resumed = await runRl(grpo('async-resume', 8, { max_staleness: 2 }, { checkpointEvery: 2, resume: true }));
    assert.equal(resumed.status, 'completed');
    const ledger = ledgerOf(resumed.runDir);
    assert.deepEqual(ledger.map((e) => e.step), [1, 2, 3, 4, 5, 6, 7, 8]);
    const lines = ledger.flatMap((e) => [...e.consumed, ...e.dropped]);
    assert.equal(lines.length, 32);
    assert.equal(new Set(lines).size, 32, `every prompt once over 8 steps of 4 (64 prompts, one shuffled epoch): ${lines.join(' ')}`);
  });

  test('an asynchronous run SIGKILLed mid-step (posttrain grpo as its own process) and resumed consumes every prompt exactly once', async () => {
    const runId = 'async-sigkill';
    const runDir = join(outputDir, runId);
    const configPath = join(outputDir, `${runId}.json`);
    writeFileSync(configPath, JSON.stringify(grpoRaw(runId, 8, { max_staleness: 2 }, { checkpointEvery: 2 })));
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'posttrain.js'), 'grpo', '--config', configPath, '--no-progress'], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, POSTTRAIN_LOG_LEVEL: 'warn' },
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += String(c)));
    const exited = new Promise<string>((done) => child.once('exit', (code, signal) => done(signal ?? `exit ${code}`)));
    const ledgerLines = () => (existsSync(join(runDir, 'rollout-ledger.jsonl')) ? ledgerOf(runDir).length : 0);
    // Killed as soon as step 3 has consumed its rollouts (its ledger line is written before its update):
    // the checkpoint is step 2, and step 3's update, with rollouts in flight for steps 4 and 5, is lost.
    const deadline = Date.now() + 300_000;
    while (ledgerLines() < 3 && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(child.exitCode, null, `the run ended before it could be killed: ${stderr}`);
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const ledgerAtKill = ledgerLines();
    const checkpoints = readdirSync(join(runDir, 'checkpoints')).filter((d) => /^step-\d+$/.test(d)).map((d) => Number(d.slice(5)));
    const lastCheckpoint = Math.max(...checkpoints);
    console.log(`# SIGKILL with ${ledgerAtKill} ledger lines written, last checkpoint at step ${lastCheckpoint}`);
    assert.ok(ledgerAtKill > lastCheckpoint, `the kill should come after steps past the checkpoint: ledger ${ledgerAtKill} lines, checkpoint step ${lastCheckpoint}`);

    const resumed = await runRl(grpo(runId, 8, { max_staleness: 2 }, { checkpointEvery: 2, resume: true }));
    assert.equal(resumed.status, 'completed');
    assert.equal(resumed.runDir, runDir);
    const ledger = ledgerOf(runDir);
    assert.deepEqual(ledger.map((e) => e.step), [1, 2, 3, 4, 5, 6, 7, 8], 'steps past the checkpoint are cut from the ledger and run again');
    const lines = ledger.flatMap((e) => [...e.consumed, ...e.dropped]);
    assert.equal(new Set(lines).size, 32, `every prompt once over 8 steps of 4: ${lines.join(' ')}`);
    assert.equal(lines.length, 32);
  });
});
