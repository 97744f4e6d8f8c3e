import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@posttrain/backend';
import { createLogger } from '@posttrain/telemetry';
import { loadModel } from '@posttrain/model';
import { loadTokenizer } from '@posttrain/tokenizer';
import type { StepEvent } from '@posttrain/training';
import { PtxMix } from './ptx-mix';
import { resolveRlRunConfig } from './rl-run-config';
import { runRl } from './run-rl';
import { HAS_DIGIT, SHORT, rewardComponentsJson, rlConfig, startService, writePrompts, writeTinyPolicy } from './test-support';
import type { ServiceProcess } from './test-support';

// Online RL end to end: two policy samplers, the reference and the reward service
// as separate processes on loopback, the trainer loop in this process.
describe('online RL over the serving tier', { timeout: 900_000 }, () => {
  let model: string;
  let prompts: string;
  let outputDir: string;
  const samplers: ServiceProcess[] = [];
  let reference: ServiceProcess;
  let reward: ServiceProcess;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

  before(async () => {
    await initBackend({ logger: createLogger({ service: 'test', level: 'warn' }) });
    [model, prompts, outputDir] = await Promise.all([writeTinyPolicy(4), writePrompts(64), mkdtemp(join(tmpdir(), 'posttrain-rl-runs-'))]);
    const args = ['--model', model, '--max-new-tokens', '16'];
    [samplers[0], samplers[1], reference, reward] = await Promise.all([startService('policy-sampler', args), startService('policy-sampler', args), startService('reference', ['--model', model]), startService('reward', [])]);
  });
  after(async () => {
    await Promise.all([...samplers, reference, reward].filter(Boolean).map((s) => s.kill()));
  });

  const services = () => ({ sampler_addresses: samplers.map((s) => s.address), reference_address: reference.address, reward_address: reward.address });
  const sampling = { temperature: 1, max_completion_length: 8 };

  test('PPO raises the mean rule-based reward; the KL is reported and the adaptive controller pushes it towards the target; rollouts use both samplers', async () => {
    const steps: Record<string, number>[] = [];
    const config = rlConfig(
      { runId: 'ppo-learns', outputDir, model, prompts, maxSteps: 14, learningRate: 3e-3 },
      'ppo',
      {
        services: services(),
        reward_components: rewardComponentsJson(SHORT),
        prompts_per_step: 8,
        num_generations: 2,
        num_ppo_epochs: 2,
        mini_batch_size: 8,
        gamma: 1,
        lam: 0.95,
        vf_coef: 0.5,
        whiten_advantages: true,
        kl_coef: 0.05,
        kl_target: 1,
        kl_horizon: 64,
        ...sampling,
      },
    );
    const result = await runRl(resolveRlRunConfig(config), { callbacks: { onStep: (e) => steps.push(e.metrics) } });
    assert.equal(result.status, 'completed');
    assert.equal(steps.length, 14);
    const scores = steps.map((m) => m['objective/scores']);
    const first = mean(scores.slice(0, 3));
    const last = mean(scores.slice(-3));
    console.log('PPO objective/scores by step:', scores.map((s) => s.toFixed(2)).join(' '));
    console.log('PPO objective/kl by step:', steps.map((m) => m['objective/kl'].toFixed(3)).join(' '), 'kl_coef:', steps.map((m) => m['objective/kl_coef'].toFixed(4)).join(' '));
    assert.ok(last > first + 0.25, `mean reward of the last 3 steps ${last} should exceed the first 3 (${first}) by 0.25`);
    for (const m of steps) {
      for (const k of ['objective/kl', 'objective/entropy', 'policy/clipfrac', 'policy/approxkl', 'loss/policy', 'loss/value', 'val/explained_variance', 'rewards/short']) assert.ok(Number.isFinite(m[k]) || k === 'val/explained_variance', `${k} = ${m[k]}`);
      assert.equal(m['rollout/count'], 16);
      assert.equal(m['rollout/stale'], 0);
      assert.equal(m['rollout/samplers_acked'], 2);
      // The trainer's log-probs of fresh rollouts match the sampler's (the ratio starts at 1).
      assert.ok(m['rollout/logprob_diff'] < 1e-3, `rollout/logprob_diff ${m['rollout/logprob_diff']}`);
    }
    // Adaptive controller (Ziegler et al.): the coefficient rises after steps whose KL is above target and falls after those below.
    for (let i = 1; i < steps.length; i++) {
      const before = steps[i - 1];
      const direction = Math.sign(steps[i]['objective/kl_coef'] - before['objective/kl_coef']);
      assert.equal(direction, Math.sign(before['objective/kl'] - 1) || direction, `step ${i + 1}: coefficient moved ${direction} after KL ${before['objective/kl']}`);
    }
    assert.ok(steps.every((m) => m['rollout/sampler_0'] > 0 && m['rollout/sampler_1'] > 0), 'every step used both samplers');
    assert.equal(result.weightsVersion, steps.at(-1)!['rollout/weights_version']);
    assert.ok(existsSync(join(result.runDir, 'report.html')));
    assert.ok(existsSync(join(result.runDir, 'model', 'model.safetensors')));
    const state = JSON.parse(readFileSync(join(result.runDir, 'checkpoints', 'step-14', 'trainer_state.json'), 'utf8')) as { extra: { klController: { kind: string; value: number }; weightsVersion: number } };
    assert.equal(state.extra.klController.kind, 'adaptive');
    // The saved coefficient is the last step's after its update: beta (1 + clip(KL / 1 - 1, -0.2, 0.2) * 16 / 64).
    const lastStep = steps.at(-1)!;
    const expected = lastStep['objective/kl_coef'] * (1 + (Math.max(-0.2, Math.min(0.2, lastStep['objective/kl'] / 1 - 1)) * 16) / 64);
    assert.ok(Math.abs(state.extra.klController.value - expected) < 1e-12, `${state.extra.klController.value} vs ${expected}`);
    assert.equal(state.extra.weightsVersion, result.weightsVersion);
  });

  test('PPO-ptx: the next-token loss on the pretraining mix joins every policy update, falls, and its position is checkpointed', async () => {
    const corpus = join(outputDir, 'ptx-corpus.jsonl');
    await writeFile(corpus, Array.from({ length: 24 }, (_, i) => JSON.stringify({ text: `${i % 4} plus ${i % 4} is ${2 * (i % 4)}.` })).join('\n') + '\n');
    const steps: Record<string, number>[] = [];
    const section = { services: services(), reward_components: rewardComponentsJson(SHORT), prompts_per_step: 8, num_generations: 2, num_ppo_epochs: 2, mini_batch_size: 8, gamma: 1, lam: 0.95, vf_coef: 0.5, kl_coef: 0.05, ptx_coef: 1, ptx_dataset: corpus, ptx_batch_size: 4, ...sampling };
    const config = resolveRlRunConfig(rlConfig({ runId: 'ppo-ptx', outputDir, model, prompts, maxSteps: 6, learningRate: 3e-3 }, 'ppo', section));
    const result = await runRl(config, { callbacks: { onStep: (e) => steps.push(e.metrics) } });
    assert.equal(result.status, 'completed');
    const ptx = steps.map((m) => m['loss/ptx']);
    console.log('PPO-ptx loss/ptx by step:', ptx.map((x) => x.toFixed(3)).join(' '));
    assert.ok(ptx.every(Number.isFinite), `loss/ptx every step: ${ptx.join(', ')}`);
    assert.ok(ptx[5] < 0.8 * ptx[0], `the ptx loss falls by a fifth in 6 steps of 4 updates (${ptx[0]} -> ${ptx[5]})`);
    // 6 steps x 2 epochs x 2 minibatches = 24 batches of the mix: the checkpoint is where a fresh mix stands after 24.
    const state = JSON.parse(readFileSync(join(result.runDir, 'checkpoints', 'step-6', 'trainer_state.json'), 'utf8')) as { extra: { ptxPosition: unknown } };
    const fresh = await PtxMix.open(config.ppo!.ptx!, 4, await loadTokenizer(model), config.seed);
    try {
      for (let i = 0; i < 24; i++) await fresh.next();
      assert.deepEqual(state.extra.ptxPosition, fresh.position());
    } finally {
      await fresh.close();
    }
  });

  test('PPO with freezing_actor_steps and critic_learning_rate: only the critic trains at first, at its own rate; then the policy moves too', async () => {
    const steps: Record<string, number>[] = [];
    const section = { services: services(), reward_components: rewardComponentsJson(SHORT), prompts_per_step: 8, num_generations: 2, num_ppo_epochs: 1, mini_batch_size: 16, gamma: 1, lam: 0.95, vf_coef: 0.5, kl_coef: 0.05, critic_learning_rate: 3e-2, freezing_actor_steps: 2, ...sampling };
    const config = resolveRlRunConfig(rlConfig({ runId: 'ppo-frozen-actor', outputDir, model, prompts, maxSteps: 3, learningRate: 3e-3, checkpointEvery: 1 }, 'ppo', section));
    const result = await runRl(config, { callbacks: { onStep: (e) => steps.push(e.metrics) } });
    assert.equal(result.status, 'completed');
    assert.deepEqual(steps.map((m) => m['train/actor_frozen']), [1, 1, 0]);
    // Constant schedule: the critic's rate is critic_learning_rate on every step (10x the policy's 3e-3).
    assert.deepEqual(steps.map((m) => m['train/critic_learning_rate']), [3e-2, 3e-2, 3e-2]);
    assert.deepEqual(steps.map((m) => 'policy/grad_norm' in m), [false, false, true]);
    const weights = async (dir: string) => {
      const m = await loadModel(dir);
      try {
        return new Map(m.namedTrainables().map((p) => [p.name, Float32Array.from(p.variable.dataSync() as Float32Array)]));
      } finally {
        m.dispose();
      }
    };
    const maxDiff = (a: Map<string, Float32Array>, b: Map<string, Float32Array>) => {
      let d = 0;
      for (const [name, x] of a) x.forEach((v, i) => (d = Math.max(d, Math.abs(v - b.get(name)![i]))));
      return d;
    };
    const start = await weights(model);
    const ck = (n: number, what: string) => join(result.runDir, 'checkpoints', `step-${n}`, what);
    // The policy after the two frozen steps is the start model to the bit; the critic (a score head on a copy) is not.
    assert.equal(maxDiff(start, await weights(ck(2, 'model'))), 0);
    assert.ok(maxDiff(await weights(ck(1, 'value_model')), await weights(ck(2, 'value_model'))) > 0, 'the critic trained in a frozen step');
    assert.ok(maxDiff(start, await weights(ck(3, 'model'))) > 0, 'the policy trained after the frozen steps');
  });

  test('GRPO raises the verifiable reward', async () => {
    const steps: Record<string, number>[] = [];
    const config = rlConfig(
      { runId: 'grpo-learns', outputDir, model, prompts, maxSteps: 12, learningRate: 3e-3 },
      'grpo',
      {
        services: services(),
        reward_components: rewardComponentsJson(HAS_DIGIT),
        prompts_per_step: 4,
        num_generations: 4,
        advantage_estimator: 'grpo',
        num_iterations: 2,
        mini_batch_size: 8,
        beta: 0.02,
        ...sampling,
      },
    );
    const samples: StepEvent['samples'][] = [];
    const result = await runRl(resolveRlRunConfig(config), { callbacks: { onStep: (e) => (steps.push(e.metrics), samples.push(e.samples)) } });
    assert.equal(result.status, 'completed');
    // Each step reports 4 of its 16 rollouts as text, one per group: the decoded prompt, the completion and its score.
    for (const [i, step] of samples.entries()) {
      assert.equal(step?.length, 4, `step ${i + 1}: ${JSON.stringify(step)}`);
      for (const s of step!) {
        assert.match(s.prompt, /[0-9]\+[0-9]=/, 'the prompt text as the policy saw it');
        assert.equal(s.reward, /[0-9]/.test(s.completion) ? 1 : 0, `has_digit reward of ${JSON.stringify(s.completion)}`);
      }
    }
    const scores = steps.map((m) => m['objective/scores']);
    console.log('GRPO objective/scores by step:', scores.map((s) => s.toFixed(2)).join(' '));
    assert.ok(mean(scores.slice(-3)) > mean(scores.slice(0, 3)) + 0.25, scores.join(' '));
    for (const m of steps) {
      assert.ok(Number.isFinite(m['loss/kl']) && Number.isFinite(m['objective/kl']), `loss/kl ${m['loss/kl']}`);
      assert.ok(m['reward/frac_zero_std'] >= 0 && m['reward/frac_zero_std'] <= 1);
    }
  });

  test('truncated rollouts: missing_eos_penalty comes off their reward, and mask_truncated_completions keeps them out of the loss', async () => {
    // A policy with no EOS id never stops: every rollout runs to max_completion_length (finish reason LENGTH).
    const endless = await writeTinyPolicy(6, { eosTokenId: null });
    const own = await Promise.all([startService('policy-sampler', ['--model', endless, '--max-new-tokens', '16']), startService('reference', ['--model', endless])]);
    try {
      const run = async (runId: string, mask: boolean) => {
        const steps: Record<string, number>[] = [];
        const section = {
          services: { sampler_addresses: [own[0].address], reference_address: own[1].address, reward_address: reward.address },
          reward_components: rewardComponentsJson(HAS_DIGIT),
          prompts_per_step: 4,
          num_generations: 4,
          beta: 0.02,
          missing_eos_penalty: 0.5,
          mask_truncated_completions: mask,
          ...sampling,
        };
        const result = await runRl(resolveRlRunConfig(rlConfig({ runId, outputDir, model: endless, prompts, maxSteps: 2, learningRate: 3e-3 }, 'grpo', section)), { callbacks: { onStep: (e) => steps.push(e.metrics) } });
        assert.equal(result.status, 'completed');
        return { steps, modelDir: result.modelDir! };
      };
      const weights = async (dir: string) => {
        const m = await loadModel(dir);
        try {
          return m.namedTrainables().map((p) => Float32Array.from(p.variable.dataSync() as Float32Array));
        } finally {
          m.dispose();
        }
      };
      const changed = (a: Float32Array[], b: Float32Array[]) => a.some((x, i) => x.some((v, j) => v !== b[i][j]));
      const start = await weights(endless);

      const masked = await run('grpo-truncated-masked', true);
      for (const m of masked.steps) {
        assert.equal(m['rollout/clipped_ratio'], 1);
        assert.equal(m['rollout/mean_terminated_length'], 0);
        // Every reward less the penalty: the step's mean score is the rule's mean minus 0.5 (float32 rewards).
        assert.ok(Math.abs(m['objective/scores'] - (m['rewards/has_digit'] - 0.5)) < 1e-6, `objective/scores ${m['objective/scores']} vs rewards/has_digit ${m['rewards/has_digit']} - 0.5`);
      }
      // Every token of every rollout is out of the loss: the policy is the start model to the bit.
      assert.equal(changed(start, await weights(masked.modelDir)), false, 'a policy trained only on masked rollouts moved');
      // The control: the same run without the mask trains on them.
      const unmasked = await run('grpo-truncated-unmasked', false);
      assert.equal(changed(start, await weights(unmasked.modelDir)), true, 'the unmasked run left the policy unchanged');
    } finally {
      await Promise.all(own.map((s) => s.kill()));
    }
  });

  test('a run cancelled at a step boundary and resumed repeats the uninterrupted run step for step', async () => {
    const ppo = (runId: string, resume: boolean) =>
      rlConfig(
        { runId, outputDir, model, prompts, maxSteps: 4, learningRate: 3e-3, resume },
        'ppo',
        {
          services: services(),
          reward_components: rewardComponentsJson(SHORT),
          prompts_per_step: 4,
          num_generations: 2,
          num_ppo_epochs: 2,
          mini_batch_size: 4,
          gamma: 1,
          lam: 0.95,
          vf_coef: 0.5,
          kl_coef: 0.05,
          kl_target: 1,
          kl_horizon: 64,
          ...sampling,
        },
      );
    const whole: Record<string, number>[] = [];
    await runRl(resolveRlRunConfig(ppo('ppo-whole', false)), { callbacks: { onStep: (e) => whole.push(e.metrics) } });
    const ac = new AbortController();
    const parts: Record<string, number>[] = [];
    const first = await runRl(resolveRlRunConfig(ppo('ppo-split', false)), {
      signal: ac.signal,
      callbacks: {
        onStep: (e) => {
          parts.push(e.metrics);
          if (e.step === 2) ac.abort();
        },
      },
    });
    assert.equal(first.status, 'cancelled');
    assert.equal(first.step, 2);
    assert.ok(existsSync(join(first.runDir, 'checkpoints', 'step-2', 'value_model', 'model.safetensors')));
    const second = await runRl(resolveRlRunConfig(ppo('ppo-split', true)), { callbacks: { onStep: (e) => parts.push(e.metrics) } });
    assert.equal(second.status, 'completed');
    assert.equal(parts.length, 4);
    for (let i = 0; i < 4; i++) {
      for (const k of ['objective/scores', 'objective/kl', 'objective/kl_coef', 'loss/policy', 'loss/value', 'rollout/completion_length']) {
        assert.ok(Math.abs(parts[i][k] - whole[i][k]) <= 1e-5 * Math.max(1, Math.abs(whole[i][k])), `step ${i + 1} ${k}: resumed ${parts[i][k]} vs uninterrupted ${whole[i][k]}`);
      }
    }
  });

  test('a sampler killed in the middle of a PPO run: the run completes on the other, nothing lost or counted twice', async () => {
    const extra = await startService('policy-sampler', ['--model', model, '--max-new-tokens', '16']);
    const steps: Record<string, number>[] = [];
    const config = rlConfig(
      { runId: 'ppo-sampler-dies', outputDir, model, prompts, maxSteps: 5, learningRate: 1e-3, checkpointEvery: 2 },
      'ppo',
      {
        services: { ...services(), sampler_addresses: [samplers[0].address, extra.address] },
        reward_components: rewardComponentsJson(SHORT),
        prompts_per_step: 8,
        num_generations: 2,
        num_ppo_epochs: 1,
        mini_batch_size: 16,
        gamma: 1,
        lam: 0.95,
        vf_coef: 0.5,
        kl_coef: 0.05,
        ...sampling,
      },
    );
    let killed: Promise<void> | null = null;
    const result = await runRl(resolveRlRunConfig(config), {
      pool: { requestTimeoutMs: 20_000, benchMs: 1_000 },
      callbacks: {
        onStep: (e) => {
          steps.push(e.metrics);
          if (e.step === 2) killed = extra.kill('SIGKILL');
        },
      },
    });
    await killed;
    assert.equal(result.status, 'completed');
    assert.equal(steps.length, 5);
    for (const m of steps) assert.equal(m['rollout/count'], 16, 'every prompt got its samples exactly once');
    assert.ok(steps[0]['rollout/sampler_1'] > 0, 'before the kill both samplers served');
    for (const m of steps.slice(2)) {
      assert.equal(m['rollout/sampler_0'], 16);
      assert.equal(m['rollout/samplers_acked'], 1);
    }
  });
});
