import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@posttrain/backend';
import type { RewardComponent } from '@posttrain/proto';
import { createLogger } from '@posttrain/telemetry';
import { resolveRlRunConfig } from './rl-run-config';
import { runRl } from './run-rl';
import { rewardComponentsJson, rlConfig, startService, writePrompts, writeTinyPolicy } from './test-support';
import type { ServiceProcess } from './test-support';

// PPO's adaptive KL controller (Ziegler et al. 2019) holding the per-sequence KL to the
// reference near its target, end to end: a sampler, the reference and the reward service
// as separate processes on loopback, the trainer loop in this process.
//
// The reward is a staircase of regex rules, +1 for each of "starts with 1, 2, 3 digits":
// the tiny random model starts with a digit about 10% of the time, so PPO can chase it, and
// chasing it moves the policy away from the reference without a bound the test relies on.
// Both runs start from the same small coefficient; the control run keeps it fixed.
//
// Measured on this setup (lr 1e-3, 32 samples a step, 44 steps): with a fixed beta = 0.1 the
// KL climbs to 3-4.5 nats; with beta >= 3 held fixed it stays near 0.6 (the drift that noisy
// updates alone cause). The adaptive controller first lowers beta while the KL is below the
// target, then raises it (at most 40% a step: error clip 0.2 x 32 samples / horizon 16) once
// the KL overshoots, and brings the KL back into the band over the last steps.

const TARGET = 1.5;
const HORIZON = 16;
const INIT_COEF = 0.1;
const STEPS = 44;
const WINDOW = 8;
/** The band the adaptive run's KL must stay in over the last WINDOW steps: [target / 2, 1.5 target]. */
const BAND: readonly [number, number] = [TARGET / 2, 1.5 * TARGET];

const leadingDigits = (k: number): RewardComponent => ({ name: `digits_${k}`, weight: 1, rule: { $case: 'regex', value: { pattern: `^[0-9]{${k}}`, flags: '', fullMatch: false, negate: false } } });

describe('PPO with the adaptive KL controller over the serving tier', { timeout: 600_000 }, () => {
  let model: string;
  let prompts: string;
  let outputDir: string;
  const services: ServiceProcess[] = [];

  before(async () => {
    await initBackend({ logger: createLogger({ service: 'test', level: 'warn' }) });
    [model, prompts, outputDir] = await Promise.all([writeTinyPolicy(4), writePrompts(64), mkdtemp(join(tmpdir(), 'posttrain-kl-control-'))]);
    services.push(...(await Promise.all([startService('policy-sampler', ['--model', model, '--max-new-tokens', '16']), startService('reference', ['--model', model]), startService('reward', [])])));
  });
  after(async () => {
    await Promise.all(services.map((s) => s.kill()));
  });

  const ppo = async (runId: string, adaptive: boolean): Promise<Record<string, number>[]> => {
    const steps: Record<string, number>[] = [];
    const config = rlConfig(
      { runId, outputDir, model, prompts, maxSteps: STEPS, learningRate: 1e-3 },
      'ppo',
      {
        services: { sampler_addresses: [services[0].address], reference_address: services[1].address, reward_address: services[2].address },
        reward_components: rewardComponentsJson(leadingDigits(1), leadingDigits(2), leadingDigits(3)),
        prompts_per_step: 8,
        num_generations: 4,
        num_ppo_epochs: 2,
        mini_batch_size: 16,
        gamma: 1,
        lam: 0.95,
        vf_coef: 0.5,
        whiten_advantages: true,
        // k1 estimator, KL as a per-token reward penalty (Ziegler et al.).
        kl_coef: INIT_COEF,
        ...(adaptive ? { kl_target: TARGET, kl_horizon: HORIZON } : {}),
        temperature: 1,
        max_completion_length: 8,
      },
    );
    const result = await runRl(resolveRlRunConfig(config), { callbacks: { onStep: (e) => steps.push(e.metrics) } });
    assert.equal(result.status, 'completed');
    assert.equal(steps.length, STEPS);
    const row = (k: string, digits: number) => steps.map((m) => m[k].toFixed(digits)).join(' ');
    console.log(`${runId} objective/kl:      ${row('objective/kl', 2)}`);
    console.log(`${runId} objective/kl_coef: ${row('objective/kl_coef', 3)}`);
    console.log(`${runId} objective/scores:  ${row('objective/scores', 2)}`);
    return steps;
  };

  test('the adaptive controller holds objective/kl in the band around the target over the last steps; the same start with a fixed coefficient drifts above it', async () => {
    const fixed = await ppo('kl-fixed', false);
    const adaptive = await ppo('kl-adaptive', true);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const lastKl = (steps: Record<string, number>[]) => steps.slice(-WINDOW).map((m) => m['objective/kl']);

    for (const m of [...fixed, ...adaptive]) {
      assert.equal(m['rollout/count'], 32);
      assert.ok(Number.isFinite(m['objective/kl']), `objective/kl ${m['objective/kl']}`);
    }
    // The reward pulls the policy away: with the small fixed coefficient the last steps score well above the first
    // (measured 0.12 -> 0.63 over 8-step means). The adaptive run trades that reward for staying near the target.
    const scores = fixed.map((m) => m['objective/scores']);
    assert.ok(mean(scores.slice(-WINDOW)) > mean(scores.slice(0, WINDOW)) + 0.25, `fixed-coefficient scores ${scores.join(' ')}`);
    assert.ok(fixed.every((m) => m['objective/kl_coef'] === INIT_COEF), 'the control run keeps its coefficient');

    // The controller's recurrence, replayed from the logged metrics with a plain loop: the coefficient of
    // step i+1 is beta_i (1 + clip(KL_i / target - 1, -0.2, 0.2) * n / horizon), where n is the number of
    // samples in the batch (Ziegler et al.; 8 prompts x 4 = 32), not the number of optimiser steps.
    // Tolerance 1e-12 relative: the same float64 operations, in the same order.
    let beta = INIT_COEF;
    for (let i = 0; i < adaptive.length; i++) {
      const m = adaptive[i];
      assert.ok(Math.abs(m['objective/kl_coef'] - beta) <= 1e-12 * beta, `step ${i + 1}: kl_coef ${m['objective/kl_coef']}, replayed ${beta}`);
      beta *= 1 + (Math.min(Math.max(m['objective/kl'] / TARGET - 1, -0.2), 0.2) * 32) / HORIZON;
    }
    // The controller acted: the coefficient at the end is well above where both runs started.
    assert.ok(adaptive.at(-1)!['objective/kl_coef'] > 10 * INIT_COEF, `final kl_coef ${adaptive.at(-1)!['objective/kl_coef']}`);

    // Held: every one of the last WINDOW steps in [target / 2, 1.5 target], and their mean within 25% of the target.
    const held = lastKl(adaptive);
    for (const [j, v] of held.entries()) assert.ok(v >= BAND[0] && v <= BAND[1], `adaptive step ${STEPS - WINDOW + j + 1}: objective/kl ${v} outside [${BAND[0]}, ${BAND[1]}] (last ${WINDOW}: ${held.join(' ')})`);
    assert.ok(Math.abs(mean(held) - TARGET) <= 0.25 * TARGET, `adaptive mean KL of the last ${WINDOW} steps ${mean(held)} vs target ${TARGET}`);

    // Drifted: the fixed-coefficient control run is above the band on every one of the same steps.
    const drifted = lastKl(fixed);
    for (const [j, v] of drifted.entries()) assert.ok(v > BAND[1], `fixed step ${STEPS - WINDOW + j + 1}: objective/kl ${v} should be above ${BAND[1]} (last ${WINDOW}: ${drifted.join(' ')})`);
  });
});
