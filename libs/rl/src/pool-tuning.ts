/**
 * The sampler pool's options with their defaults filled in and checked
 * (rollout-types.ts documents each).
 */
import type { SamplerPoolOptions } from './rollout-types';

export type PoolTuning = Required<Omit<SamplerPoolOptions, 'onRetry' | 'onEvent' | 'maxAttemptsPerPrompt'>> & Pick<SamplerPoolOptions, 'onRetry' | 'onEvent' | 'maxAttemptsPerPrompt'>;

/** The numeric options' defaults; each must be a number > 0. */
const DEFAULTS = {
  requestTimeoutMs: 120_000,
  minRequestTimeoutMs: 5_000,
  initialMsPerToken: 250,
  deadlineSlack: 4,
  assumedMaxNewTokens: 256,
  maxInFlightPerSampler: 8,
  benchMs: 5_000,
  maxBenchMs: 60_000,
  loadWeightsTimeoutMs: 60_000,
  minLoadWeightsTimeoutMs: 5_000,
  initialUploadBytesPerSecond: 20_000_000,
};
/** Checked to be > 0 (maxInFlightPerSampler is left to the pool, as before). */
const POSITIVE = ['requestTimeoutMs', 'minRequestTimeoutMs', 'initialMsPerToken', 'deadlineSlack', 'assumedMaxNewTokens', 'benchMs', 'maxBenchMs', 'loadWeightsTimeoutMs', 'minLoadWeightsTimeoutMs', 'initialUploadBytesPerSecond'] as const;

/** Defaults filled in; throws naming an option that is not a number > 0. */
export function poolTuning(options: SamplerPoolOptions): PoolTuning {
  const numbers = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) numbers[key] = options[key] ?? DEFAULTS[key];
  // maxAttemptsPerPrompt unset: 2 x the replicas in the pool at the time + 1.
  const tuning: PoolTuning = { ...numbers, maxAttemptsPerPrompt: options.maxAttemptsPerPrompt, onRetry: options.onRetry, onEvent: options.onEvent };
  for (const key of POSITIVE) {
    const v = tuning[key];
    if (!Number.isFinite(v) || v <= 0) throw new Error(`sampler pool ${key}: got ${v}, expected a number > 0`);
  }
  return tuning;
}
