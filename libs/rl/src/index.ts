/**
 * @posttrain/rl: online RL over the serving tier. A sampler pool that fans
 * rollouts out over every PolicySampler replica (retries on another replica,
 * no rollout lost or counted twice, stale rollouts dropped or
 * importance-weighted), and the PPO and GRPO loops: reference log-probs,
 * reward scores, critic and GAE or group advantages, clipped epochs over
 * minibatches, KL control, weight pushes by version, checkpoints and resume.
 *
 * @example
 * ```ts
 * import { loadRunConfig } from '@posttrain/training';
 * import { resolveRlRunConfig, runRl } from '@posttrain/rl';
 * const config = resolveRlRunConfig(await loadRunConfig('grpo.yaml')); // a run config of stage ppo or grpo
 * const ac = new AbortController();
 * const result = await runRl(config, {
 *   signal: ac.signal,
 *   callbacks: { onStep: (e) => console.log(e.step, e.metrics['objective/scores'], e.metrics['objective/kl']) },
 * });
 * console.log(result.status, result.runDir, result.weightsVersion);
 * ```
 */
export { SamplerPool, promptSeed } from './sampler-pool';
export type { RolloutPrompt, Rollout, SamplerPoolOptions, GenerateRolloutsOptions, RolloutsResult, WeightsPushResult } from './sampler-pool';
export { filterStaleRollouts, importanceWeights } from './stale-rollouts';
export type { StalePolicy, StaleFilterResult } from './stale-rollouts';
export { buildRolloutBatch, selectRows, selectRowsOf, policyForward, criticValues, mapRowChunks } from './rollout-batch';
export type { RolloutBatch } from './rollout-batch';
export { resolveRlRunConfig, RlConfigError } from './rl-run-config';
export type { RlRunConfig, GroupEstimator } from './rl-run-config';
export { runRl, explainedVariance, RlRunError } from './run-rl';
export type { RunRlOptions, RunRlResult } from './run-rl';
// For tests and the reliability suite (tests/reliability): services on loopback, a tiny policy, prompts, run configs.
export { startService, writeTinyPolicy, writePrompts, rlConfig, rlRawConfig, rewardComponentsJson, HAS_DIGIT, SHORT } from './test-support';
export type { ServiceProcess, RlConfigCommon } from './test-support';
