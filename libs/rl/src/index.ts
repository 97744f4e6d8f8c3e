/**
 * @posttrain/rl: online RL over the serving tier. `ppo.ts` and `grpo.ts` read
 * top to bottom as their algorithms; around them, `online-run.ts` holds the
 * run (harness, models, optimizers, KL controller, services, weight pushes),
 * `collect-experience.ts` the rollouts, reference log-probs and scores, and
 * `sampler-pool.ts` the fan-out over every PolicySampler replica (retries on
 * another replica, no rollout lost or counted twice, stale rollouts dropped or
 * importance-weighted), elastic when its addresses come from DNS or a file
 * (`sampler-addresses.ts`; joining and restarted replicas are brought to the
 * current weights by `replica-sync.ts`). The reference and reward services are reached through
 * two small interfaces (`service-clients.ts`), whose gRPC adapters are the
 * only place protos appear.
 *
 * @example
 * ```ts
 * import { loadRunConfig } from '@posttrain/training';
 * import { resolveRlRunConfig, runRl } from '@posttrain/rl';
 * const config = resolveRlRunConfig(await loadRunConfig('grpo.yaml')); // a run config of stage ppo or grpo
 * const ac = new AbortController();
 * const result = await runRl(config, { // an RlRunConfig (rl-run-config.ts)
 *   signal: ac.signal,
 *   callbacks: { onStep: (e) => console.log(e.step, e.metrics['objective/scores'], e.metrics['objective/kl']) },
 * });
 * console.log(result.status, result.runDir, result.weightsVersion);
 * ```
 */

// Runs.
export { runRl } from './run-rl';
export { runPpo, explainedVariance } from './ppo';
export { runGrpo, groupAdvantages } from './grpo';
export { RlRunError } from './online-run';
export type { RunRlOptions, RunRlResult } from './online-run';
export { resolveRlRunConfig, RlConfigError } from './rl-run-config';
export type { RlRunConfig, GroupEstimator } from './rl-run-config';

// The services an RL step calls, as interfaces with one gRPC adapter each.
export { referenceServiceClient, rewardServiceClient, dpoReferenceLogProbs } from './service-clients';
export type { ReferenceLogProbs, RewardScorer, RewardItem, CompletionTokens, ServiceClientOptions } from './service-clients';

// Building blocks (the sampler pool, stale rollouts, rollout batches and forward passes).
export { SamplerPool } from './sampler-pool';
export { promptSeed } from './rollout-types';
export type { RolloutPrompt, Rollout, SamplerPoolOptions, SamplerPoolEvent, SamplerPoolStats, GenerateRolloutsOptions, RolloutsResult, WeightsPushResult } from './rollout-types';
export { AddressSourceError, dnsAddressSource, fileAddressSource, fixedAddressSource, parseAddressFile, parseDnsTarget, samplerAddressSource } from './sampler-addresses';
export type { HostResolver, SamplerAddressSource, SamplerSourceConfig } from './sampler-addresses';
export { filterStaleRollouts, importanceWeights } from './stale-rollouts';
export type { StalePolicy, StaleFilterResult } from './stale-rollouts';
export { buildRolloutBatch, selectRows, selectRowsOf, policyForward, criticValues, mapRowChunks } from './rollout-batch';
export type { RolloutBatch } from './rollout-batch';

// Internal: for tests and the reliability suite (tests/reliability): services on loopback, a tiny policy, prompts, run configs.
export { startService, writeTinyPolicy, writePrompts, rlConfig, rlRawConfig, rewardComponentsJson, HAS_DIGIT, SHORT } from './test-support';
export type { ServiceProcess, RlConfigCommon } from './test-support';
