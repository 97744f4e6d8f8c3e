import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRunConfig, RunConfigError } from '@posttrain/training';
import { RlConfigError, resolveRlRunConfig } from './rl-run-config';
import { SHORT, rewardComponentsJson, rlConfig, rlRawConfig } from './test-support';

const services = { sampler_addresses: ['a:1', 'b:2'], reference_address: 'r:3', reward_address: 'w:4' };
const common = { runId: 'r1', outputDir: '/tmp/x', model: '/m', prompts: '/p.jsonl', maxSteps: 3, learningRate: 1e-3 };
const ppoSection = { services, reward_components: rewardComponentsJson(SHORT), prompts_per_step: 4, num_generations: 2, num_ppo_epochs: 2, mini_batch_size: 4, gamma: 1, lam: 0.95, kl_coef: 0.1 };
const grpoSection = { services, reward_components: rewardComponentsJson(SHORT), prompts_per_step: 2, num_generations: 4, num_iterations: 1, mini_batch_size: 8 };
const ppo = (keys: Record<string, unknown> = {}) => resolveRlRunConfig(rlConfig(common, 'ppo', { ...ppoSection, ...keys }));
const grpo = (keys: Record<string, unknown> = {}) => resolveRlRunConfig(rlConfig(common, 'grpo', { ...grpoSection, ...keys }));
const invalid = (build: () => unknown, message: RegExp) => assert.throws(build, (e: unknown) => e instanceof RunConfigError && message.test(e.message), message.source);
const unresolvable = (build: () => unknown, field: string, message: RegExp) =>
  assert.throws(build, (e: unknown) => e instanceof RlConfigError && e.field === field && message.test(e.message), `${field}: ${message.source}`);

describe('resolveRlRunConfig', () => {
  test('PPO defaults: clip 0.2 both sides, k1 KL as a reward penalty, drop stale rollouts, temperature 1', () => {
    const config = ppo();
    assert.equal(config.algorithm, 'ppo');
    assert.deepEqual([config.clipLow, config.clipHigh], [0.2, 0.2]);
    assert.deepEqual(config.kl, { coefficient: 0.1, adaptiveTarget: null, adaptiveHorizon: 0, estimator: 'k1', placement: 'reward' });
    assert.deepEqual(config.stale, { policy: 'drop', maxStaleness: 0 });
    assert.equal(config.sampling.temperature, 1);
    assert.equal(config.ppo!.valueClip, null);
    assert.equal(config.samplers.length, 2);
    assert.equal(config.optimizer.maxGradNorm, 1);
    assert.equal(config.optimizer.schedule, 'constant');
    assert.equal(config.logEverySteps, 1);
    assert.deepEqual(config.rewardComponents, [SHORT]);
  });

  test('GRPO defaults: k3 KL in the loss, token-mean aggregation, GRPO advantages; the names map to the algorithms names', () => {
    const config = grpo();
    assert.equal(config.kl.estimator, 'k3');
    assert.equal(config.kl.placement, 'loss');
    assert.deepEqual(config.grpo, { estimator: 'grpo', aggregation: 'token-mean', maskTruncated: false });
    const other = grpo({ advantage_estimator: 'rloo', loss_type: 'grpo', stale_rollouts: 'importance-correct', max_staleness: 2, beta: 0.1, kl_placement: 'reward' });
    assert.deepEqual(other.grpo, { estimator: 'rloo', aggregation: 'seq-mean-token-mean', maskTruncated: false });
    assert.deepEqual(other.stale, { policy: 'importance-correct', maxStaleness: 2 });
    assert.equal(other.kl.placement, 'reward');
    assert.equal(grpo({ loss_type: 'dr_grpo', max_completion_length: 16 }).grpo!.aggregation, 'seq-mean-token-sum-norm');
    assert.equal(grpo({ mini_batch_size: null }).minibatchSize, 8, 'no mini_batch_size: the whole batch of a step');
    assert.deepEqual([grpo({ epsilon: 0.1, epsilon_high: 0.3 }).clipLow, grpo({ epsilon: 0.1, epsilon_high: 0.3 }).clipHigh], [0.1, 0.3]);
  });

  test('PPO-ptx: off by default; ptx_coef with ptx_dataset resolves, the batch rows default to the minibatch', () => {
    assert.equal(ppo().ppo!.ptx, null);
    assert.deepEqual(ppo({ ptx_coef: 0.5, ptx_dataset: '/d/corpus.jsonl' }).ppo!.ptx, { coefficient: 0.5, datasetPath: '/d/corpus.jsonl', batchSize: null, maxLength: 512 });
    assert.deepEqual(ppo({ ptx_coef: 2, ptx_dataset: '/d/c.jsonl', ptx_batch_size: 3, ptx_max_length: 64 }).ppo!.ptx, { coefficient: 2, datasetPath: '/d/c.jsonl', batchSize: 3, maxLength: 64 });
    unresolvable(() => ppo({ ptx_coef: 0.5 }), 'ppo.ptx_dataset', /got null, expected a JSONL file of the pretraining mix .*ptx_coef is 0\.5/);
    unresolvable(() => ppo({ ptx_dataset: '/d/c.jsonl' }), 'ppo.ptx_coef', /got 0 with ptx_dataset "\/d\/c\.jsonl", expected a weight > 0/);
    invalid(() => ppo({ ptx_coef: -1, ptx_dataset: '/d/c.jsonl' }), /ppo\.ptx_coef: expected a finite number >= 0, got number -1/);
    invalid(() => ppo({ ptx_batch_size: 0 }), /ppo\.ptx_batch_size: expected an integer >= 1 or null, got number 0/);
    invalid(() => grpo({ ptx_coef: 1 }), /grpo\.ptx_coef: unknown key/);
  });

  test('the critic\'s own learning rate and frozen actor steps (OpenRLHF\'s critic_learning_rate, freezing_actor_steps): off by default, checked', () => {
    assert.equal(ppo().ppo!.criticLearningRate, null);
    assert.equal(ppo().ppo!.freezingActorSteps, 0);
    const set = ppo({ critic_learning_rate: 9e-6, freezing_actor_steps: 2 }).ppo!;
    assert.equal(set.criticLearningRate, 9e-6);
    assert.equal(set.freezingActorSteps, 2);
    // max_steps is 3: freezing all 3 would never train the policy.
    unresolvable(() => ppo({ freezing_actor_steps: 3 }), 'ppo.freezing_actor_steps', /got 3 with train\.max_steps 3, expected fewer than max_steps/);
    invalid(() => ppo({ critic_learning_rate: 0 }), /ppo\.critic_learning_rate: expected a finite number > 0 or null, got number 0/);
    invalid(() => ppo({ freezing_actor_steps: -1 }), /ppo\.freezing_actor_steps: expected an integer >= 0, got number -1/);
    invalid(() => grpo({ freezing_actor_steps: 1 }), /grpo\.freezing_actor_steps: unknown key/);
  });

  test("truncated rollouts (TRL's missing_eos_penalty, and GRPO's mask_truncated_completions): off by default, checked", () => {
    assert.equal(ppo().missingEosPenalty, null);
    assert.equal(grpo().missingEosPenalty, null);
    assert.equal(grpo().grpo!.maskTruncated, false);
    assert.equal(ppo({ missing_eos_penalty: 1.5 }).missingEosPenalty, 1.5);
    const set = grpo({ missing_eos_penalty: 0.5, mask_truncated_completions: true });
    assert.equal(set.missingEosPenalty, 0.5);
    assert.equal(set.grpo!.maskTruncated, true);
    invalid(() => grpo({ missing_eos_penalty: -1 }), /grpo\.missing_eos_penalty: expected a finite number >= 0 or null, got number -1/);
    invalid(() => grpo({ mask_truncated_completions: 'yes' }), /grpo\.mask_truncated_completions: expected true or false, got string "yes"/);
    invalid(() => ppo({ mask_truncated_completions: true }), /ppo\.mask_truncated_completions: unknown key/);
  });

  test('every bad key is named with its value and what was expected', () => {
    invalid(() => ppo({ mini_batch_size: 3 }), /ppo\.mini_batch_size: expected an integer >= 1 dividing prompts_per_step \* num_generations = 8, or null, got number 3/);
    invalid(() => ppo({ cliprange: 1.5 }), /ppo\.cliprange: expected a finite number > 0 and < 1, got number 1\.5/);
    invalid(() => ppo({ gamma: 2 }), /ppo\.gamma: expected a finite number >= 0 and <= 1, got number 2/);
    invalid(() => ppo({ dual_clip_c: 0.5 }), /ppo\.dual_clip_c: expected a finite number > 1 or null/);
    invalid(() => ppo({ kl_target: 6 }), /ppo\.kl_horizon: expected an integer > 0 when kl_target is set, got number 0/);
    invalid(() => ppo({ temperature: 0 }), /ppo\.temperature: expected a finite number > 0, got number 0/);
    invalid(() => ppo({ kl_estimator: 'k9' }), /ppo\.kl_estimator: expected one of "k1", "k2", "k3", got string "k9"/);
    invalid(() => ppo({ group_size: 4 }), /ppo\.group_size: unknown key \(known keys of ppo: prompts_per_step, num_generations, /);
    invalid(() => grpo({ num_generations: 1 }), /grpo\.num_generations: expected an integer >= 2, got number 1/);
    invalid(() => grpo({ loss_type: 'bnpo' }), /grpo\.loss_type: expected one of "dapo", "grpo", "dr_grpo", got string "bnpo"/);
    invalid(() => grpo({ loss_type: 'dr_grpo' }), /grpo\.max_completion_length: expected an integer >= 1 with loss_type "dr_grpo"/);
    invalid(() => rlConfig({ ...common, runId: 'Bad Id' }, 'ppo', ppoSection), /run_id: expected 1-64 characters of \[a-z0-9_-\] \(a directory name\), got string "Bad Id"/);
    invalid(() => rlConfig({ ...common, learningRate: undefined as never }, 'grpo', grpoSection), /train\.learning_rate: required key is missing for stage "grpo"/);
    unresolvable(() => ppo({ services: { ...services, sampler_addresses: [] } }), 'ppo.services.sampler_addresses', /at least one PolicySampler address/);
    unresolvable(() => ppo({ services: { ...services, reference_address: null } }), 'ppo.services.reference_address', /kl_coef is > 0/);
    unresolvable(() => ppo({ reward_components: [] }), 'ppo.reward_components', /at least one component/);
    unresolvable(() => grpo({ reward_components: [{ name: 'x', weight: 1, regexx: {} }] }), 'grpo.reward_components[0]', /^grpo\.reward_components\[0\]: regexx: unknown key; RewardComponent has/);
    unresolvable(() => resolveRlRunConfig({ ...rlConfig(common, 'ppo', ppoSection), stage: 'sft' }), 'stage', /expected "ppo" or "grpo"/);
  });

  test('sampler addresses from exactly one source: a fixed list, a DNS name, or a file, the last two refreshed', () => {
    const withSamplers = (keys: Record<string, unknown>) => grpo({ services: { sampler_addresses: [], reference_address: null, reward_address: 'w:4', ...keys } });
    assert.deepEqual(grpo().samplerSource, { kind: 'list', addresses: ['a:1', 'b:2'] });
    assert.deepEqual(withSamplers({ sampler_dns: 'samplers.ns.svc:50051' }).samplerSource, { kind: 'dns', host: 'samplers.ns.svc', port: 50051, refreshSeconds: 10 });
    assert.deepEqual(withSamplers({ sampler_dns: 'dns:///samplers:7', sampler_refresh_seconds: 2.5 }).samplerSource, { kind: 'dns', host: 'samplers', port: 7, refreshSeconds: 2.5 });
    assert.deepEqual(withSamplers({ sampler_file: '/etc/samplers' }).samplerSource, { kind: 'file', path: '/etc/samplers', refreshSeconds: 10 });
    assert.deepEqual(withSamplers({ sampler_file: '/etc/samplers' }).samplers, []);
    unresolvable(() => withSamplers({}), 'grpo.services.sampler_addresses', /got \[\], expected at least one PolicySampler address \(or sampler_dns, or sampler_file\)/);
    unresolvable(() => grpo({ services: { ...services, sampler_file: '/f' } }), 'grpo.services.sampler_file', /set together with sampler_addresses; expected exactly one of sampler_addresses, sampler_dns, sampler_file/);
    unresolvable(() => withSamplers({ sampler_dns: 's:1', sampler_file: '/f' }), 'grpo.services.sampler_file', /set together with sampler_dns/);
    unresolvable(() => withSamplers({ sampler_dns: 'samplers' }), 'grpo.services.sampler_dns', /got "samplers", expected name:port \(a headless Service and the samplers' port/);
    unresolvable(() => grpo({ services: { ...services, sampler_refresh_seconds: 5 } }), 'grpo.services.sampler_refresh_seconds', /got 5, expected null: a fixed sampler_addresses list is not refreshed/);
    unresolvable(() => grpo({ services: { ...services, sampler_addresses: ['a:1', 'a:1'] } }), 'grpo.services.sampler_addresses[1]', /"a:1" is listed twice/);
    invalid(() => withSamplers({ sampler_dns: 's:1', sampler_refresh_seconds: 0 }), /grpo\.services\.sampler_refresh_seconds: expected a finite number > 0 or null, got number 0/);
  });

  test('keys of the offline stages are errors for ppo and grpo, saying why', () => {
    const raw = rlRawConfig(common, 'grpo', grpoSection);
    const train = raw.train as Record<string, unknown>;
    invalid(() => parseRunConfig({ ...raw, lora: { r: 4 } }), /lora: this section applies to stages "lm", "sft", "rm", "dpo" only, but stage is "grpo" \(online runs train all weights .*LoRA pushes are not implemented\)/);
    invalid(() => parseRunConfig({ ...raw, train: { ...train, batch_size: 8 } }), /train\.batch_size: this key applies to stages "lm", "sft", "rm", "dpo" only, but stage is "grpo" \(ppo and grpo batch by prompts_per_step and mini_batch_size/);
    invalid(() => parseRunConfig({ ...raw, train: { ...train, gradient_accumulation_steps: 2 } }), /train\.gradient_accumulation_steps: this key applies to stages .* one optimizer step per mini-batch/);
    invalid(() => parseRunConfig({ ...raw, dataset: { train: 'p.jsonl', eval: 'e.jsonl' } }), /dataset\.eval: this key applies to stages .* evaluate through their rewards/);
    invalid(() => parseRunConfig({ ...raw, dataset: { train: 'p.jsonl', format: 'preference' } }), /dataset\.format: expected "prompt-only" or null for stage "grpo", got string "preference"/);
    invalid(() => parseRunConfig({ ...raw, grpo: undefined, ppo: ppoSection }), /ppo: this section applies to stage "ppo" only, but stage is "grpo"/);
  });
});
