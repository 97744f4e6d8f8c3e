/**
 * The sampler pool's options with their defaults filled in and checked
 * (rollout-types.ts documents each).
 */
import type { SamplerPoolOptions } from './rollout-types';

export type PoolTuning = Required<Omit<SamplerPoolOptions, 'onRetry' | 'onEvent' | 'maxAttemptsPerPrompt'>> & Pick<SamplerPoolOptions, 'onRetry' | 'onEvent' | 'maxAttemptsPerPrompt'>;

/** Defaults filled in; throws naming an option that is not a number > 0. */
export function poolTuning(options: SamplerPoolOptions): PoolTuning {
  const tuning: PoolTuning = {
    requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
    minRequestTimeoutMs: options.minRequestTimeoutMs ?? 5_000,
    initialMsPerToken: options.initialMsPerToken ?? 250,
    deadlineSlack: options.deadlineSlack ?? 4,
    assumedMaxNewTokens: options.assumedMaxNewTokens ?? 256,
    // Unset: 2 x the replicas in the pool at the time + 1.
    maxAttemptsPerPrompt: options.maxAttemptsPerPrompt,
    maxInFlightPerSampler: options.maxInFlightPerSampler ?? 8,
    benchMs: options.benchMs ?? 5_000,
    maxBenchMs: options.maxBenchMs ?? 60_000,
    loadWeightsTimeoutMs: options.loadWeightsTimeoutMs ?? 60_000,
    minLoadWeightsTimeoutMs: options.minLoadWeightsTimeoutMs ?? 5_000,
    initialUploadBytesPerSecond: options.initialUploadBytesPerSecond ?? 20_000_000,
    onRetry: options.onRetry,
    onEvent: options.onEvent,
  };
  for (const key of ['requestTimeoutMs', 'minRequestTimeoutMs', 'initialMsPerToken', 'deadlineSlack', 'assumedMaxNewTokens', 'benchMs', 'maxBenchMs', 'loadWeightsTimeoutMs', 'minLoadWeightsTimeoutMs', 'initialUploadBytesPerSecond'] as const) {
    const v = tuning[key];
    if (!Number.isFinite(v) || v <= 0) throw new Error(`sampler pool ${key}: got ${v}, expected a number > 0`);
  }
  return tuning;
}
