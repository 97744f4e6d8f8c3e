import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AdvantageEstimator, KlPlacement, LossAggregation, StaleRolloutPolicy } from '@posttrain/proto';
import type { RunSpec } from '@posttrain/proto';
import { RlConfigError, resolveRlRunConfig } from './rl-run-config';
import { SHORT, rlSpec } from './test-support';

const services = { samplerAddresses: ['a:1', 'b:2'], referenceAddress: 'r:3', rewardAddress: 'w:4' };
const common = { runId: 'r1', outputDir: '/tmp/x', model: '/m', prompts: '/p.jsonl', maxSteps: 3, learningRate: 1e-3 };
const ppo = (value: Record<string, unknown> = {}) => rlSpec(common, { $case: 'ppo', value: { services, rewardComponents: [SHORT], rolloutBatchSize: 4, samplesPerPrompt: 2, ppoEpochs: 2, minibatchSize: 4, gamma: 1, gaeLambda: 0.95, kl: { coefficient: 0.1, adaptiveHorizon: 0, estimator: 0, placement: 0 }, ...value } });
const grpo = (value: Record<string, unknown> = {}) => rlSpec(common, { $case: 'grpo', value: { services, rewardComponents: [SHORT], promptsPerStep: 2, groupSize: 4, updatesPerBatch: 1, minibatchSize: 8, ...value } });
const rejects = (spec: RunSpec, field: string, message: RegExp) =>
  assert.throws(
    () => resolveRlRunConfig(spec),
    (e: unknown) => e instanceof RlConfigError && e.field === field && message.test(e.message),
  );

describe('resolveRlRunConfig', () => {
  test('PPO defaults: clip 0.2 both sides, k1 KL as a reward penalty, drop stale rollouts, temperature 1', () => {
    const c = resolveRlRunConfig(ppo());
    assert.equal(c.algorithm, 'ppo');
    assert.deepEqual([c.clipLow, c.clipHigh], [0.2, 0.2]);
    assert.deepEqual(c.kl, { coefficient: 0.1, adaptiveTarget: null, adaptiveHorizon: 0, estimator: 'k1', placement: 'reward' });
    assert.deepEqual(c.stale, { policy: 'drop', maxStaleness: 0 });
    assert.equal(c.sampling.temperature, 1);
    assert.equal(c.ppo!.valueClip, null);
    assert.equal(c.samplers.length, 2);
    assert.equal(c.optimizer.maxGradNorm, 1);
  });

  test('GRPO defaults: k3 KL in the loss, token-mean aggregation, GRPO advantages; the enums map to the algorithms names', () => {
    const c = resolveRlRunConfig(grpo());
    assert.equal(c.kl.estimator, 'k3');
    assert.equal(c.kl.placement, 'loss');
    assert.deepEqual(c.grpo, { estimator: 'grpo', aggregation: 'token-mean' });
    const d = resolveRlRunConfig(grpo({ advantageEstimator: AdvantageEstimator.RLOO, lossAggregation: LossAggregation.SEQUENCE_MEAN, staleRollouts: StaleRolloutPolicy.IMPORTANCE_CORRECT, maxStaleness: 2, kl: { coefficient: 0.1, adaptiveHorizon: 0, estimator: 0, placement: KlPlacement.REWARD } }));
    assert.deepEqual(d.grpo, { estimator: 'rloo', aggregation: 'seq-mean-token-mean' });
    assert.deepEqual(d.stale, { policy: 'importance-correct', maxStaleness: 2 });
    assert.equal(d.kl.placement, 'reward');
  });

  test('every bad field is named with its value and what was expected', () => {
    rejects(ppo({ minibatchSize: 3 }), 'ppo.minibatch_size', /got 3, expected an integer >= 1 dividing rollout_batch_size \* samples_per_prompt = 8/);
    rejects(ppo({ clipLow: 1.5 }), 'ppo.clip_low', /got 1\.5, expected a value in \(0, 1\)/);
    rejects(ppo({ gamma: 2 }), 'ppo.gamma', /got 2/);
    rejects(ppo({ dualClipC: 0.5 }), 'ppo.dual_clip_c', /expected a number > 1/);
    rejects(ppo({ services: { ...services, samplerAddresses: [] } }), 'ppo.services.sampler_addresses', /at least one PolicySampler address/);
    rejects(ppo({ services: { ...services, referenceAddress: '' } }), 'ppo.services.reference_address', /kl\.coefficient is > 0/);
    rejects(ppo({ rewardComponents: [] }), 'ppo.reward_components', /at least one component/);
    rejects(ppo({ kl: { coefficient: 0.1, adaptiveTarget: 6, adaptiveHorizon: 0, estimator: 0, placement: 0 } }), 'ppo.kl.adaptive_horizon', /> 0 when adaptive_target is set/);
    rejects(ppo({ sampling: { temperature: 0, topK: 0, stop: [], stopTokenIds: [], logprobs: false } }), 'ppo.sampling.temperature', /got 0/);
    rejects(grpo({ groupSize: 1 }), 'grpo.group_size', /got 1, expected an integer >= 2/);
    rejects(grpo({ lossAggregation: LossAggregation.SEQUENCE_SUM_NORM }), 'grpo.sampling.max_new_tokens', /LOSS_AGGREGATION_SEQUENCE_SUM_NORM divides by it/);
    rejects({ ...ppo(), runId: 'Bad Id' }, 'run_id', /got "Bad Id"/);
    rejects({ ...ppo(), lora: { rank: 4, alpha: 8, dropout: 0, targetModules: [] } }, 'lora', /LoRA pushes are not implemented/);
    rejects({ ...ppo(), stage: undefined }, 'stage', /expected "ppo" or "grpo"/);
    rejects({ ...ppo(), dataset: { paths: [], format: 0, evalPaths: [], evalFraction: 0, maxSamples: 0 } }, 'dataset.paths', /exactly one JSONL file/);
  });
});
