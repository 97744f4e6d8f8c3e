import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@posttrain/backend';
import { createLogger } from '@posttrain/telemetry';
import { resolveRlRunConfig } from './rl-run-config';
import { runRl } from './run-rl';
import { HAS_DIGIT, rewardComponentsJson, rlConfig, startService, writePrompts, writeTinyPolicy } from './test-support';
import type { ServiceProcess } from './test-support';

// Faults during GRPO runs over real services on loopback: a frozen sampler
// (SIGSTOP), a reward service killed and restarted on its port, and one that
// stays down. Each run is short (bounded steps) and talks to loopback only.
describe('online RL under faults', { timeout: 900_000 }, () => {
  let model: string;
  let prompts: string;
  let outputDir: string;
  const samplers: ServiceProcess[] = [];
  let reward: ServiceProcess;
  const extra: ServiceProcess[] = [];
  const quiet = createLogger({ service: 'test', level: 'error' });
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  before(async () => {
    await initBackend({ logger: createLogger({ service: 'test', level: 'warn' }) });
    [model, prompts, outputDir] = await Promise.all([writeTinyPolicy(4), writePrompts(64), mkdtemp(join(tmpdir(), 'posttrain-rl-faults-'))]);
    const args = ['--model', model, '--max-new-tokens', '16'];
    [samplers[0], samplers[1], reward] = await Promise.all([startService('policy-sampler', args), startService('policy-sampler', args), startService('reward', [])]);
  });
  after(async () => {
    for (const s of samplers) if (s.child.exitCode === null) s.child.kill('SIGCONT');
    await Promise.all([...samplers, reward, ...extra].filter(Boolean).map((s) => s.kill('SIGKILL')));
  });

  const grpo = (runId: string, maxSteps: number, rewardAddress: string) =>
    rlConfig(
      { runId, outputDir, model, prompts, maxSteps, learningRate: 1e-3 },
      'grpo',
      {
        services: { sampler_addresses: samplers.map((s) => s.address), reference_address: null, reward_address: rewardAddress },
        reward_components: rewardComponentsJson(HAS_DIGIT),
        prompts_per_step: 4,
        num_generations: 4,
        advantage_estimator: 'grpo',
        num_iterations: 1,
        mini_batch_size: 16,
        temperature: 1,
        max_completion_length: 8,
      },
    );

  test('a sampler frozen with SIGSTOP for 60 s of a GRPO run: steps keep completing within 3x the median step + 10 s, no rollout lost or counted twice, and the thawed replica comes back', async () => {
    const steps: Record<string, number>[] = [];
    const frozen = samplers[1];
    let frozenAt = 0;
    let thawedAt = 0;
    let thawStep = 0;
    // Frozen after step FREEZE_AT, when the deadlines follow steady-state calls: the latency budget remembers
    // the slowest of the last 16 Generate calls (4 per step), and the first ones, cold on a busy machine, can
    // be slow enough to stretch the deadline (and the step that meets the freeze) past the bound.
    const FREEZE_AT = 8;
    const result = await runRl(resolveRlRunConfig(grpo('grpo-frozen-sampler', 3000, reward.address)), {
      logger: quiet,
      callbacks: {
        onStep: (e) => {
          steps.push(e.metrics);
          if (e.step === FREEZE_AT) {
            frozen.child.kill('SIGSTOP');
            frozenAt = Date.now();
          }
          // Thawed after 60 s (or at step 2980 on a machine fast enough to get there first), so steps follow the thaw.
          // With the fused decoding kernels a step takes about 60 ms here: 900 steps no longer outlast the freeze.
          if (frozenAt > 0 && thawedAt === 0 && (Date.now() - frozenAt >= 60_000 || e.step === 2980)) {
            frozen.child.kill('SIGCONT');
            thawedAt = Date.now();
            thawStep = e.step;
          }
        },
      },
    });
    assert.equal(result.status, 'completed');
    assert.equal(steps.length, 3000);
    assert.ok(thawedAt - frozenAt >= 60_000, `frozen for ${thawedAt - frozenAt} ms, expected 60 s (the run reached step 2980 first)`);
    const seconds = steps.map((m) => m['time/step_seconds']);
    const around = (i: number) => `step ${i + 1}: ${seconds[i].toFixed(2)} s, sampler_1 ${steps[i]['rollout/sampler_1']}, retries ${steps[i]['rollout/retries']}`;
    const shown = [...new Set([0, 1, FREEZE_AT - 1, FREEZE_AT, FREEZE_AT + 1, thawStep - 1, thawStep, thawStep + 1])].filter((i) => i < steps.length);
    console.log(`thawed after step ${thawStep}; frozen for ${((thawedAt - frozenAt) / 1000).toFixed(1)} s; median step ${median(seconds).toFixed(3)} s, slowest ${Math.max(...seconds).toFixed(2)} s; ${shown.map(around).join('; ')}`);
    const bound = 3 * median(seconds) + 10;
    for (const [i, s] of seconds.entries()) assert.ok(s <= bound, `step ${i + 1} took ${s} s, more than 3 x the median ${median(seconds)} s + 10 s`);
    for (const m of steps) {
      assert.equal(m['rollout/count'], 16, 'every prompt got its group exactly once');
      assert.equal(m['rollout/sampler_0'] + m['rollout/sampler_1'], 16);
    }
    assert.ok(steps[0]['rollout/sampler_1'] > 0, 'both samplers served before the freeze');
    for (const m of steps.slice(FREEZE_AT + 1, thawStep)) assert.equal(m['rollout/sampler_1'], 0, 'the frozen sampler produced nothing while stopped');
    assert.ok(steps.slice(thawStep + 1).some((m) => m['rollout/sampler_1'] > 0), 'the thawed sampler got prompts again');
  });

  test('the reward service killed and restarted on its port mid-run: the run waits for it and completes', async () => {
    const steps: Record<string, number>[] = [];
    const port = reward.address.split(':').pop()!;
    let restarted: Promise<void> | null = null;
    const result = await runRl(resolveRlRunConfig(grpo('grpo-reward-restart', 5, reward.address)), {
      logger: quiet,
      serviceRetryMs: 60_000,
      callbacks: {
        onStep: (e) => {
          steps.push(e.metrics);
          if (e.step === 2) {
            restarted = (async () => {
              await reward.kill('SIGKILL');
              await new Promise((r) => setTimeout(r, 3_000)); // the "pod" is down for 3 s, then comes back on its port
              reward = await startService('reward', ['--port', port]);
            })();
          }
        },
      },
    });
    await restarted;
    assert.equal(result.status, 'completed');
    assert.equal(steps.length, 5);
    for (const m of steps) assert.equal(m['rollout/count'], 16);
    assert.equal(reward.address.split(':').pop(), port);
  });

  test('a reward service that stays down past the retry window fails the run with a message naming the service and its address', async () => {
    const gone = await startService('reward', []);
    extra.push(gone);
    const began = { at: 0 };
    await assert.rejects(
      runRl(resolveRlRunConfig(grpo('grpo-reward-gone', 4, gone.address)), {
        logger: quiet,
        serviceRetryMs: 3_000,
        callbacks: {
          onStep: (e) => {
            if (e.step === 1) {
              began.at = Date.now();
              void gone.kill('SIGKILL');
            }
          },
        },
      }),
      (e: Error) => {
        assert.match(e.message, new RegExp(`^reward service at ${gone.address.replace(/\./g, '\\.')}: 14 UNAVAILABLE`));
        assert.match(e.message, /retry window 3000 ms/);
        return true;
      },
    );
    const waited = Date.now() - began.at;
    assert.ok(waited >= 2_000 && waited < 60_000, `the run failed ${waited} ms after the kill`);
  });
});
