/**
 * What the sampler pool takes and gives: prompts, rollouts (a completion with
 * the sampler's per-token log-probs and weights version), the pool's options,
 * and the per-prompt sampling seed.
 */
import type { Completion, FinishReason, SamplingParams } from '@posttrain/proto';

/** A prompt to sample from, already tokenised (chat template applied); `id` is unique within one call. */
export interface RolloutPrompt {
  readonly id: string;
  readonly tokenIds: readonly number[];
}

/** One sampled completion with the sampler's per-token log-probs. */
export interface Rollout {
  readonly promptId: string;
  readonly sampleIndex: number;
  readonly promptTokenIds: number[];
  readonly tokenIds: number[];
  readonly text: string;
  /** log pi_behaviour(token_t), one per token id. */
  readonly logprobs: number[];
  readonly finishReason: FinishReason;
  readonly weightsVersion: number;
  /** Address of the replica that produced it. */
  readonly sampler: string;
}

export interface SamplerPoolOptions {
  /** Longest deadline of one Generate request (ms); a request past its deadline is re-issued elsewhere. Default 120 000. */
  requestTimeoutMs?: number;
  /** Shortest deadline of one Generate request (ms). Default 5 000 (at most requestTimeoutMs). */
  minRequestTimeoutMs?: number;
  /** Cost per requested token (ms) assumed until a Generate request has succeeded. Default 250. */
  initialMsPerToken?: number;
  /** Deadlines are this multiple of the slowest recent cost per token or byte. Default 4. */
  deadlineSlack?: number;
  /** max_new_tokens assumed for the deadline when the sampling parameters leave it to the sampler. Default 256. */
  assumedMaxNewTokens?: number;
  /** Attempts per prompt before the whole call fails. Default 2 x replicas + 1. */
  maxAttemptsPerPrompt?: number;
  /** Requests in flight per replica. Default 8. */
  maxInFlightPerSampler?: number;
  /** How long a replica that failed with UNAVAILABLE / DEADLINE_EXCEEDED is skipped (ms), doubled per failure in a row. Default 5 000. */
  benchMs?: number;
  /** Longest bench (ms). Default 60 000. */
  maxBenchMs?: number;
  /** Longest deadline of a LoadWeights upload to one replica (ms). Default 60 000. */
  loadWeightsTimeoutMs?: number;
  /** Shortest deadline of a LoadWeights upload (ms). Default 5 000 (at most loadWeightsTimeoutMs). */
  minLoadWeightsTimeoutMs?: number;
  /** Upload speed (bytes per second) assumed until an upload has succeeded. Default 20 000 000. */
  initialUploadBytesPerSecond?: number;
  /** Called on every failed attempt (for logs). */
  onRetry?: (e: { promptId: string; sampler: string; attempt: number; error: string }) => void;
  /** Called when a replica joins or leaves, restarts, is re-synced, or the address source fails (for logs). */
  onEvent?: (e: SamplerPoolEvent) => void;
}

/** What changed in an elastic pool. */
export interface SamplerPoolEvent {
  kind: 'added' | 'removed' | 'restarted' | 'resynced' | 'resync-failed' | 'source-error';
  /** The replica's address; the source's description for source-error. */
  sampler: string;
  detail?: string;
}

/** The pool now (SamplerPool.stats). */
export interface SamplerPoolStats {
  /** Replicas in the pool. */
  size: number;
  /** Replicas holding the newest pushed weights, not benched: the ones prompts go to. */
  ready: number;
  /** Uploads of the newest weights outside a push, to a replica that joined or restarted. */
  resyncs: number;
  /** Replicas noticed holding older weights than they acknowledged (restarted). */
  restarts: number;
  /** Replicas that joined and left since the pool opened. */
  added: number;
  removed: number;
  replicas: { address: string; index: number; weightsVersion: number; benched: boolean; needsSync: boolean; acceptedLast: number; acceptedTotal: number }[];
}

export interface GenerateRolloutsOptions {
  /** Completions per prompt, >= 1. */
  n: number;
  /** Sampling parameters; logprobs is forced on and seed is set per prompt. */
  sampling: Omit<SamplingParams, 'seed' | 'logprobs'>;
  /** Base seed; each prompt samples with a seed derived from (seed, prompt id). */
  seed: number;
  signal?: AbortSignal;
}

export interface RolloutsResult {
  /** Completions in prompt order, then sample order: prompts.length * n of them. */
  rollouts: Rollout[];
  /** Failed attempts that were re-issued. */
  retries: number;
  /** Accepted completions per replica address. */
  perSampler: Record<string, number>;
}

export interface WeightsPushResult {
  /** Replicas that acknowledged the version. */
  acked: string[];
  /** Replicas that did not (unreachable, refused); their error messages. */
  failed: { sampler: string; error: string }[];
  /** Replicas that already had this exact version (a resumed run re-pushing). */
  duplicates: string[];
  /** Benched replicas whose upload goes on in the background (not waited for). */
  background: string[];
}

/** FNV-1a of "seed:id": a 31-bit sampling seed per prompt. */
export function promptSeed(seed: number, promptId: string): number {
  let h = 0x811c9dc5;
  const text = `${seed >>> 0}:${promptId}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}

/** One request's complete set of completions (by sample index) as rollouts, in sample order. */
export function rolloutsOf(promptId: string, completions: ReadonlyMap<number, Completion>, sampler: string): Rollout[] {
  return [...completions.values()]
    .sort((x, y) => x.sampleIndex - y.sampleIndex)
    .map((c) => ({
      promptId,
      sampleIndex: c.sampleIndex,
      promptTokenIds: c.promptTokenIds,
      tokenIds: c.tokenIds,
      text: c.text,
      logprobs: c.logprobs,
      finishReason: c.finishReason,
      weightsVersion: c.weightsVersion,
      sampler,
    }));
}
