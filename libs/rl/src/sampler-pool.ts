/**
 * The trainer's view of the PolicySampler replicas: rollouts fanned out
 * round-robin over every address, weights pushed to every replica.
 *
 * Each prompt is one Generate request (n samples), so a prompt is the unit of
 * retry: the sampler batches concurrent requests into shared forward passes,
 * and a failure costs only the prompts in flight on that replica. A request
 * that errors, times out, or ends with fewer than n completions (or a
 * duplicated or out-of-range one) has its partial completions discarded and
 * its prompt re-issued on another replica; a prompt's completions are accepted
 * only as the complete set of one request, and each prompt id is accepted
 * once, so no rollout is lost or counted twice. A replica that answers
 * UNAVAILABLE or times out is benched for a while; prompts go to the others.
 *
 * The sampling seed of a prompt is derived from (seed, prompt id), not from
 * the replica or the attempt, so a re-issued prompt samples the same
 * completions from the same weights.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { PolicySamplerService, WeightsFormat, weightsChunks } from '@posttrain/proto';
import type { Completion, FinishReason, SamplingParams } from '@posttrain/proto';
import { createClient, status } from '@posttrain/rpc';
import type { RpcClient } from '@posttrain/rpc';

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
  /** Deadline of one Generate request (ms); a request past it is re-issued elsewhere. Default 120 000. */
  requestTimeoutMs?: number;
  /** Attempts per prompt before the whole call fails. Default 2 x replicas + 1. */
  maxAttemptsPerPrompt?: number;
  /** Requests in flight per replica. Default 8. */
  maxInFlightPerSampler?: number;
  /** How long a replica that failed with UNAVAILABLE / DEADLINE_EXCEEDED is skipped (ms). Default 5 000. */
  benchMs?: number;
  /** Deadline of a LoadWeights upload to one replica (ms). Default 60 000. */
  loadWeightsTimeoutMs?: number;
  /** Called on every failed attempt (for logs). */
  onRetry?: (e: { promptId: string; sampler: string; attempt: number; error: string }) => void;
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

function describeError(err: unknown): string {
  const e = err as Partial<ServiceError>;
  if (typeof e.code === 'number') return `${status[e.code] ?? e.code}: ${e.details ?? e.message}`;
  return (err as Error).message ?? String(err);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

export class SamplerPool {
  readonly addresses: readonly string[];
  private readonly clients: RpcClient<typeof PolicySamplerService>[];
  private readonly opts: Required<Omit<SamplerPoolOptions, 'onRetry'>> & Pick<SamplerPoolOptions, 'onRetry'>;
  private readonly benchedUntil: number[];
  private cursor = 0;

  constructor(addresses: readonly string[], options: SamplerPoolOptions = {}) {
    if (addresses.length === 0) throw new Error('sampler_addresses: empty, expected at least one PolicySampler address');
    const seen = new Set<string>();
    addresses.forEach((a, i) => {
      if (typeof a !== 'string' || a.trim() === '') throw new Error(`sampler_addresses[${i}]: got ${JSON.stringify(a)}, expected host:port`);
      if (seen.has(a)) throw new Error(`sampler_addresses[${i}]: ${a} is listed twice`);
      seen.add(a);
    });
    this.addresses = [...addresses];
    this.clients = addresses.map((a) => createClient(PolicySamplerService, [a], { maxAttempts: 1 }));
    this.benchedUntil = addresses.map(() => 0);
    this.opts = {
      requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
      maxAttemptsPerPrompt: options.maxAttemptsPerPrompt ?? 2 * addresses.length + 1,
      maxInFlightPerSampler: options.maxInFlightPerSampler ?? 8,
      benchMs: options.benchMs ?? 5_000,
      loadWeightsTimeoutMs: options.loadWeightsTimeoutMs ?? 60_000,
      onRetry: options.onRetry,
    };
  }

  /**
   * Samples n completions for every prompt. Resolves when every prompt has a
   * complete set; rejects when a prompt failed maxAttemptsPerPrompt times
   * (naming it and the errors) or the signal aborts.
   */
  async generate(prompts: readonly RolloutPrompt[], options: GenerateRolloutsOptions): Promise<RolloutsResult> {
    const { n } = options;
    if (!Number.isInteger(n) || n < 1) throw new Error(`n: got ${n}, expected an integer >= 1`);
    const ids = new Set<string>();
    for (const p of prompts) {
      if (ids.has(p.id)) throw new Error(`prompts: id ${JSON.stringify(p.id)} appears twice`);
      ids.add(p.id);
    }
    const done = new Map<string, Rollout[]>();
    const attempts = new Map<string, { count: number; failedOn: Set<number>; errors: string[] }>(prompts.map((p) => [p.id, { count: 0, failedOn: new Set(), errors: [] }]));
    const pending: RolloutPrompt[] = [...prompts];
    const inFlight = this.addresses.map(() => 0);
    let retries = 0;
    let fatal: Error | null = null;
    const running = new Set<Promise<void>>();

    const attempt = async (p: RolloutPrompt, replica: number): Promise<void> => {
      const a = attempts.get(p.id)!;
      a.count++;
      const got = new Map<number, Completion>();
      try {
        const stream = this.clients[replica].serverStream(
          'generate',
          {
            prompts: [{ input: { $case: 'tokenIds', value: { ids: [...p.tokenIds] } } }],
            n,
            sampling: { ...options.sampling, stop: options.sampling.stop ?? [], stopTokenIds: options.sampling.stopTokenIds ?? [], logprobs: true, seed: promptSeed(options.seed, p.id) },
            requestId: p.id,
          },
          { deadlineMs: this.opts.requestTimeoutMs, signal: options.signal },
        );
        for await (const res of stream) {
          for (const c of res.completions) {
            if (c.promptIndex !== 0 || c.sampleIndex < 0 || c.sampleIndex >= n) throw new Error(`completion (prompt_index ${c.promptIndex}, sample_index ${c.sampleIndex}) is outside the request's 1 prompt x ${n} samples`);
            if (got.has(c.sampleIndex)) throw new Error(`completion sample_index ${c.sampleIndex} was sent twice`);
            if (c.logprobs.length !== c.tokenIds.length) throw new Error(`completion sample_index ${c.sampleIndex} has ${c.logprobs.length} log-probs for ${c.tokenIds.length} tokens`);
            got.set(c.sampleIndex, c);
          }
        }
        if (got.size !== n) throw new Error(`stream ended after ${got.size} of ${n} completions`);
        if (done.has(p.id)) throw new Error(`internal: prompt ${p.id} completed twice`);
        const address = this.addresses[replica];
        done.set(
          p.id,
          [...got.values()]
            .sort((x, y) => x.sampleIndex - y.sampleIndex)
            .map((c) => ({
              promptId: p.id,
              sampleIndex: c.sampleIndex,
              promptTokenIds: c.promptTokenIds,
              tokenIds: c.tokenIds,
              text: c.text,
              logprobs: c.logprobs,
              finishReason: c.finishReason,
              weightsVersion: c.weightsVersion,
              sampler: address,
            })),
        );
      } catch (err) {
        if (options.signal?.aborted) return;
        const message = describeError(err);
        const code = (err as Partial<ServiceError>).code;
        if (code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED || code === status.CANCELLED) this.benchedUntil[replica] = Date.now() + this.opts.benchMs;
        a.failedOn.add(replica);
        a.errors.push(`${this.addresses[replica]}: ${message}`);
        this.opts.onRetry?.({ promptId: p.id, sampler: this.addresses[replica], attempt: a.count, error: message });
        // A refusal of the request itself (bad argument) fails the same way everywhere: stop now.
        if (code === status.INVALID_ARGUMENT || a.count >= this.opts.maxAttemptsPerPrompt) {
          fatal ??= new Error(`prompt ${p.id}: no complete set of ${n} completions after ${a.count} attempt(s): ${a.errors.join('; ')}`);
          return;
        }
        retries++;
        pending.push(p); // the partial completions in `got` are dropped with this attempt
      }
    };

    while (done.size < prompts.length) {
      if (fatal) break;
      if (options.signal?.aborted) throw new Error('generate: aborted');
      let dispatched = false;
      while (pending.length > 0) {
        const p = pending[0];
        const replica = this.pickReplica(inFlight, attempts.get(p.id)!.failedOn);
        if (replica < 0) break;
        pending.shift();
        inFlight[replica]++;
        const job: Promise<void> = attempt(p, replica).finally(() => {
          inFlight[replica]--;
          running.delete(job);
        });
        running.add(job);
        dispatched = true;
      }
      if (running.size > 0) await Promise.race(running);
      else if (!dispatched && pending.length > 0) await sleep(Math.min(this.opts.benchMs, 250), options.signal); // every replica benched: wait
    }
    await Promise.all(running);
    if (fatal) throw fatal;
    if (options.signal?.aborted) throw new Error('generate: aborted');
    const rollouts = prompts.flatMap((p) => done.get(p.id)!);
    const perSampler: Record<string, number> = Object.fromEntries(this.addresses.map((a) => [a, 0]));
    for (const r of rollouts) perSampler[r.sampler]++;
    return { rollouts, retries, perSampler };
  }

  /**
   * Next replica round-robin with a free slot, preferring one this prompt has
   * not failed on and that is not benched; -1 when none has a free slot.
   */
  private pickReplica(inFlight: number[], failedOn: Set<number>): number {
    const count = this.addresses.length;
    const now = Date.now();
    const free = (i: number) => inFlight[i] < this.opts.maxInFlightPerSampler;
    const tiers: ((i: number) => boolean)[] = [
      (i) => free(i) && !failedOn.has(i) && this.benchedUntil[i] <= now,
      (i) => free(i) && this.benchedUntil[i] <= now,
    ];
    // Only when every replica is benched do we try a benched one (it may be back).
    if (this.benchedUntil.every((t) => t > now)) tiers.push((i) => free(i) && !failedOn.has(i), free);
    for (const ok of tiers) {
      for (let k = 0; k < count; k++) {
        const i = (this.cursor + k) % count;
        if (ok(i)) {
          this.cursor = (i + 1) % count;
          return i;
        }
      }
    }
    return -1;
  }

  /**
   * Uploads a full safetensors file as `version` to every replica, in
   * parallel. Each ack must name `version` (else the replica is reported
   * failed). Rejects only when no replica acknowledged.
   */
  async pushWeights(safetensorsBytes: Uint8Array, version: number): Promise<WeightsPushResult> {
    if (!Number.isSafeInteger(version) || version < 1) throw new Error(`weights version: got ${version}, expected an integer >= 1`);
    const chunks = [...weightsChunks(safetensorsBytes, { version, format: WeightsFormat.SAFETENSORS_FULL })];
    const result: WeightsPushResult = { acked: [], failed: [], duplicates: [] };
    await Promise.all(
      this.clients.map(async (client, i) => {
        const address = this.addresses[i];
        try {
          const ack = await client.clientStream('loadWeights', chunks, { deadlineMs: this.opts.loadWeightsTimeoutMs });
          if (ack.version !== version) throw new Error(`acknowledged version ${ack.version}, expected ${version}`);
          if (ack.bytesReceived !== safetensorsBytes.byteLength) throw new Error(`acknowledged ${ack.bytesReceived} bytes, sent ${safetensorsBytes.byteLength}`);
          result.acked.push(address);
          if (ack.duplicate) result.duplicates.push(address);
          this.benchedUntil[i] = 0;
        } catch (err) {
          result.failed.push({ sampler: address, error: describeError(err) });
          this.benchedUntil[i] = Date.now() + this.opts.benchMs;
        }
      }),
    );
    if (result.acked.length === 0) throw new Error(`LoadWeights version ${version}: no sampler acknowledged it: ${result.failed.map((f) => `${f.sampler}: ${f.error}`).join('; ')}`);
    return result;
  }

  /** The weights version each replica reports (null for one that does not answer). */
  async weightsVersions(timeoutMs = 10_000): Promise<(number | null)[]> {
    return Promise.all(this.clients.map((c) => c.unary('getInfo', {}, { deadlineMs: timeoutMs }).then((info) => info.weightsVersion, () => null)));
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
