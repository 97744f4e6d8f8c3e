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
 * UNAVAILABLE or times out is benched for a while (twice as long after each
 * failure in a row); prompts go to the others.
 *
 * Deadlines follow the work: a Generate request's is a multiple of the
 * slowest recent cost per requested token (n x max_new_tokens), a LoadWeights
 * upload's a multiple of the slowest recent cost per byte (LatencyBudget),
 * so a frozen replica (SIGSTOP, a hung GPU) costs a step a few times the
 * normal latency, not minutes. A prompt that timed out is re-issued with
 * twice the deadline, so a machine that is merely slow still finishes.
 *
 * A replica that missed a weights push gets no prompts until a later push
 * reaches it (unless no replica holds the newest version). Uploads to a
 * benched replica are not waited for: they go on in the background, and one
 * that lands brings the replica back.
 *
 * The sampling seed of a prompt is derived from (seed, prompt id), not from
 * the replica or the attempt, so a re-issued prompt samples the same
 * completions from the same weights.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { PolicySamplerService, WeightsFormat, weightsChunks } from '@posttrain/proto';
import type { Completion } from '@posttrain/proto';
import { createClient, status } from '@posttrain/rpc';
import type { RpcClient } from '@posttrain/rpc';
import { LatencyBudget } from './latency-budget';
import type { GenerateRolloutsOptions, Rollout, RolloutPrompt, RolloutsResult, SamplerPoolOptions, WeightsPushResult } from './rollout-types';
import { promptSeed } from './rollout-types';

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
  /** Failures in a row per replica (UNAVAILABLE, deadline, failed push); a success resets it. */
  private readonly failures: number[];
  /** Newest weights version each replica acknowledged (0: none this pool pushed). */
  private readonly heldVersion: number[];
  /** Upload in flight per replica, so that a slow one is not stacked. */
  private readonly uploading: (Promise<void> | null)[];
  private latestPushed = 0;
  /** Generate deadlines: ms per requested token. */
  readonly generateBudget: LatencyBudget;
  /** LoadWeights deadlines: ms per byte. */
  readonly uploadBudget: LatencyBudget;
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
    this.clients = addresses.map((a) => createClient(PolicySamplerService, [a], { maxAttempts: 1, serviceLabel: 'policy sampler', channelOptions: { 'grpc.initial_reconnect_backoff_ms': 250, 'grpc.max_reconnect_backoff_ms': 2_000 } }));
    this.benchedUntil = addresses.map(() => 0);
    this.failures = addresses.map(() => 0);
    this.heldVersion = addresses.map(() => 0);
    this.uploading = addresses.map(() => null);
    this.opts = {
      requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
      minRequestTimeoutMs: options.minRequestTimeoutMs ?? 5_000,
      initialMsPerToken: options.initialMsPerToken ?? 250,
      deadlineSlack: options.deadlineSlack ?? 4,
      assumedMaxNewTokens: options.assumedMaxNewTokens ?? 256,
      maxAttemptsPerPrompt: options.maxAttemptsPerPrompt ?? 2 * addresses.length + 1,
      maxInFlightPerSampler: options.maxInFlightPerSampler ?? 8,
      benchMs: options.benchMs ?? 5_000,
      maxBenchMs: options.maxBenchMs ?? 60_000,
      loadWeightsTimeoutMs: options.loadWeightsTimeoutMs ?? 60_000,
      minLoadWeightsTimeoutMs: options.minLoadWeightsTimeoutMs ?? 5_000,
      initialUploadBytesPerSecond: options.initialUploadBytesPerSecond ?? 20_000_000,
      onRetry: options.onRetry,
    };
    for (const key of ['requestTimeoutMs', 'minRequestTimeoutMs', 'initialMsPerToken', 'deadlineSlack', 'assumedMaxNewTokens', 'benchMs', 'maxBenchMs', 'loadWeightsTimeoutMs', 'minLoadWeightsTimeoutMs', 'initialUploadBytesPerSecond'] as const) {
      const v = this.opts[key];
      if (!Number.isFinite(v) || v <= 0) throw new Error(`sampler pool ${key}: got ${v}, expected a number > 0`);
    }
    const o = this.opts;
    this.generateBudget = new LatencyBudget({ initialMsPerUnit: o.initialMsPerToken, slack: o.deadlineSlack, floorMs: o.minRequestTimeoutMs, capMs: o.requestTimeoutMs });
    this.uploadBudget = new LatencyBudget({ initialMsPerUnit: 1000 / o.initialUploadBytesPerSecond, slack: o.deadlineSlack, floorMs: o.minLoadWeightsTimeoutMs, capMs: o.loadWeightsTimeoutMs });
  }

  /** A failure of replica i: benched for benchMs, doubled per failure in a row, at most maxBenchMs. */
  private bench(i: number): void {
    this.failures[i]++;
    this.benchedUntil[i] = Date.now() + Math.min(this.opts.maxBenchMs, this.opts.benchMs * 2 ** (this.failures[i] - 1));
  }

  private recovered(i: number): void {
    this.failures[i] = 0;
    this.benchedUntil[i] = 0;
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
    const attempts = new Map<string, { count: number; timeouts: number; failedOn: Set<number>; errors: string[] }>(prompts.map((p) => [p.id, { count: 0, timeouts: 0, failedOn: new Set(), errors: [] }]));
    const units = n * (options.sampling.maxNewTokens ?? this.opts.assumedMaxNewTokens);
    const pending: RolloutPrompt[] = [...prompts];
    const inFlight = this.addresses.map(() => 0);
    let retries = 0;
    let fatal: Error | null = null;
    const running = new Set<Promise<void>>();

    const attempt = async (p: RolloutPrompt, replica: number): Promise<void> => {
      const a = attempts.get(p.id)!;
      a.count++;
      const got = new Map<number, Completion>();
      const began = Date.now();
      const deadlineMs = this.generateBudget.deadlineMs(units, a.timeouts);
      try {
        const stream = this.clients[replica].serverStream(
          'generate',
          {
            prompts: [{ input: { $case: 'tokenIds', value: { ids: [...p.tokenIds] } } }],
            n,
            sampling: { ...options.sampling, stop: options.sampling.stop ?? [], stopTokenIds: options.sampling.stopTokenIds ?? [], logprobs: true, seed: promptSeed(options.seed, p.id) },
            requestId: p.id,
          },
          { deadlineMs, signal: options.signal },
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
        this.generateBudget.observe(Date.now() - began, units);
        this.recovered(replica);
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
        const code = (err as Partial<ServiceError>).code;
        const message = code === status.DEADLINE_EXCEEDED ? `${describeError(err)} (deadline ${deadlineMs} ms for ${units} requested tokens)` : describeError(err);
        if (code === status.DEADLINE_EXCEEDED) a.timeouts++;
        if (code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED || code === status.CANCELLED) this.bench(replica);
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
    // Usable: not benched, and holding the newest weights this pool pushed.
    const usable = (i: number) => this.benchedUntil[i] <= now && this.heldVersion[i] >= this.latestPushed;
    const tiers: ((i: number) => boolean)[] = [(i) => free(i) && !failedOn.has(i) && usable(i), (i) => free(i) && usable(i)];
    // Only when no replica is usable do we try the others (a benched one may be back).
    if (!this.addresses.some((_, i) => usable(i))) tiers.push((i) => free(i) && !failedOn.has(i), free);
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
   * parallel, each with a deadline scaled to the bytes. Each ack must name
   * `version` (else the replica is reported failed). Uploads to benched
   * replicas go on in the background and are not waited for, unless no other
   * replica acknowledged. Rejects only when no replica acknowledged.
   */
  async pushWeights(safetensorsBytes: Uint8Array, version: number): Promise<WeightsPushResult> {
    if (!Number.isSafeInteger(version) || version < 1) throw new Error(`weights version: got ${version}, expected an integer >= 1`);
    const chunks = [...weightsChunks(safetensorsBytes, { version, format: WeightsFormat.SAFETENSORS_FULL })];
    const bytes = safetensorsBytes.byteLength;
    const deadlineMs = this.uploadBudget.deadlineMs(bytes);
    const result: WeightsPushResult = { acked: [], failed: [], duplicates: [], background: [] };
    this.latestPushed = Math.max(this.latestPushed, version);
    const upload = async (i: number, into: WeightsPushResult): Promise<void> => {
      const address = this.addresses[i];
      const began = Date.now();
      try {
        const ack = await this.clients[i].clientStream('loadWeights', chunks, { deadlineMs });
        if (ack.version !== version) throw new Error(`acknowledged version ${ack.version}, expected ${version}`);
        if (ack.bytesReceived !== bytes) throw new Error(`acknowledged ${ack.bytesReceived} bytes, sent ${bytes}`);
        this.uploadBudget.observe(Date.now() - began, bytes);
        into.acked.push(address);
        if (ack.duplicate) into.duplicates.push(address);
        this.heldVersion[i] = Math.max(this.heldVersion[i], version);
        this.recovered(i);
      } catch (err) {
        const code = (err as Partial<ServiceError>).code;
        into.failed.push({ sampler: address, error: code === status.DEADLINE_EXCEEDED ? `${describeError(err)} (deadline ${deadlineMs} ms for ${bytes} bytes)` : describeError(err) });
        this.bench(i);
      }
    };
    const now = Date.now();
    const waited: Promise<void>[] = [];
    const background: Promise<void>[] = [];
    // Outcomes of background uploads land here, not in the result the caller already holds.
    const late: WeightsPushResult = { acked: [], failed: [], duplicates: [], background: [] };
    this.clients.forEach((_, i) => {
      const address = this.addresses[i];
      if (this.uploading[i]) {
        result.failed.push({ sampler: address, error: 'an earlier upload to it is still in flight' });
        return;
      }
      const inBackground = this.benchedUntil[i] > now;
      const job = upload(i, inBackground ? late : result).finally(() => (this.uploading[i] = null));
      this.uploading[i] = job;
      if (inBackground) {
        result.background.push(address);
        background.push(job);
      } else waited.push(job);
    });
    await Promise.all(waited);
    if (result.acked.length === 0 && background.length > 0) {
      await Promise.all(background);
      result.acked.push(...late.acked);
      result.duplicates.push(...late.duplicates);
      result.failed.push(...late.failed);
      result.background = [];
    }
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
