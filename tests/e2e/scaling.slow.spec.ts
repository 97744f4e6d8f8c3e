import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { initBackend } from '@posttrain/backend';
import { HAS_DIGIT, rewardComponentsJson, writePrompts, writeTinyPolicy } from '@posttrain/rl';
import { readMetricsJsonl } from '@posttrain/telemetry';

// Rollout generation scaled on its own: `posttrain up --samplers 3`, then a GRPO run
// (`posttrain grpo`, its own process) over the three replicas, as a user would run them.
const root = join(__dirname, '..', '..');
const cli = join(root, 'bin', 'posttrain.js');

describe('GRPO over 3 sampler replicas from posttrain up', { timeout: 600_000 }, () => {
  let up: ChildProcess;
  let services: Record<string, string[]> = {};
  const stderr: string[] = [];
  let model = '';
  let prompts = '';

  before(async () => {
    await initBackend({ logger: { info: () => undefined } });
    [model, prompts] = await Promise.all([writeTinyPolicy(5), writePrompts(48)]);
    up = spawn(process.execPath, [cli, 'up', '--json', '--samplers', '3', '--model', model], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, POSTTRAIN_LOG_LEVEL: 'warn', POSTTRAIN_RUNS_DIR: await mkdtemp(join(tmpdir(), 'posttrain-scaling-runs-')) },
    });
    createInterface({ input: up.stderr! }).on('line', (l) => stderr.push(l));
    services = await new Promise((resolve, reject) => {
      createInterface({ input: up.stdout! }).on('line', (line) => resolve((JSON.parse(line) as { services: Record<string, string[]> }).services));
      up.once('exit', (code) => reject(new Error(`posttrain up exited with ${code}: ${stderr.join('\n')}`)));
    });
  });

  after(async () => {
    if (up && up.exitCode === null) {
      up.kill('SIGTERM');
      await new Promise((r) => up.once('exit', r));
    }
  });

  test('every replica serves rollouts, and each step has all of its rollouts exactly once', async () => {
    assert.equal(services['policy-sampler'].length, 3);
    const out = await mkdtemp(join(tmpdir(), 'posttrain-scaling-'));
    const steps = 6;
    const config = {
      stage: 'grpo',
      run_id: 'grpo-3-samplers',
      output_dir: out,
      model,
      dataset: { train: prompts },
      train: { max_steps: steps, learning_rate: 3e-3 },
      grpo: {
        services: { sampler_addresses: services['policy-sampler'], reference_address: services.reference[0], reward_address: services.reward[0] },
        reward_components: rewardComponentsJson(HAS_DIGIT),
        prompts_per_step: 6,
        num_generations: 4,
        beta: 0.02,
        max_completion_length: 8,
      },
    };
    const file = join(out, 'grpo.yaml');
    await writeFile(file, stringify(config));
    const run = spawn(process.execPath, [cli, 'grpo', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, POSTTRAIN_LOG_LEVEL: 'warn' } });
    const runErr: string[] = [];
    createInterface({ input: run.stderr! }).on('line', (l) => runErr.push(l));
    const code = await new Promise<number | null>((r) => run.once('exit', r));
    assert.equal(code, 0, `posttrain grpo exited with ${code}:\n${runErr.slice(-20).join('\n')}`);

    const records = readMetricsJsonl(join(out, 'grpo-3-samplers', 'metrics.jsonl')).filter((r) => 'rollout/count' in r);
    assert.equal(records.length, steps);
    const perReplica = [0, 1, 2].map((i) => records.reduce((sum, r) => sum + (r[`rollout/sampler_${i}`] ?? 0), 0));
    console.log(`rollouts per replica over ${steps} steps of 24: ${perReplica.join(' / ')}; by step: ${records.map((r) => [0, 1, 2].map((i) => r[`rollout/sampler_${i}`]).join('+')).join('  ')}`);
    for (const r of records) {
      assert.equal(r['rollout/count'], 24);
      assert.equal([0, 1, 2].reduce((sum, i) => sum + r[`rollout/sampler_${i}`], 0), 24, 'the replicas together produced each rollout once');
    }
    perReplica.forEach((n, i) => assert.ok(n > 0, `replica ${i} (${services['policy-sampler'][i]}) served no rollout`));
  });
});
