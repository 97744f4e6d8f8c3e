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
 * The pool is elastic: given an address source (sampler-addresses.ts: a DNS
 * name or a file, refreshed), it adds and removes replicas between and during
 * calls. A replica that leaves has its prompts in flight cancelled and
 * re-issued elsewhere; one that joins, or restarts with its initial weights,
 * is brought to the last pushed weights before it gets a prompt
 * (replica-sync.ts). A fixed list is never refreshed.
 *
 * The sampling seed of a prompt is derived from (seed, prompt id), not from
 * the replica or the attempt, so a re-issued prompt samples the same
 * completions from the same weights.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { WeightsFormat, weightsChunks } from '@posttrain/proto';
import type { Completion } from '@posttrain/proto';
import { status } from '@posttrain/rpc';
import { LatencyBudget } from './latency-budget';
import { Replica, ReplicaSync, describeError, lostWeights } from './replica-sync';
import type { PushedWeights } from './replica-sync';
import type { SamplerAddressSource } from './sampler-addresses';
import { checkAddressList, firstAddresses } from './sampler-addresses';
import type { GenerateRolloutsOptions, Rollout, RolloutPrompt, RolloutsResult, SamplerPoolOptions, SamplerPoolStats, WeightsPushResult } from './rollout-types';
import { promptSeed, rolloutsOf } from './rollout-types';
import { poolTuning, type PoolTuning } from './pool-tuning';

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

export class SamplerPool {
  private replicas: Replica[] = [];
  /** Stable number of every address seen (order of first appearance). */
  private readonly indexOf = new Map<string, number>();
  private readonly opts: PoolTuning;
  private readonly sync: ReplicaSync;
  /** Generate deadlines: ms per requested token. */
  readonly generateBudget: LatencyBudget;
  /** LoadWeights deadlines: ms per byte. */
  readonly uploadBudget: LatencyBudget;
  private cursor = 0;
  private added = 0;
  private removed = 0;
  private refreshTimer: NodeJS.Timeout | null = null;
  private closed = false;

  /**
   * A pool of `addresses`; with a `source` whose refreshMs > 0, the addresses
   * are asked for again every refreshMs and the pool follows them.
   */
  constructor(
    addresses: readonly string[],
    options: SamplerPoolOptions = {},
    private readonly source: SamplerAddressSource | null = null,
  ) {
    checkAddressList(addresses);
    this.opts = poolTuning(options);
    const o = this.opts;
    this.generateBudget = new LatencyBudget({ initialMsPerUnit: o.initialMsPerToken, slack: o.deadlineSlack, floorMs: o.minRequestTimeoutMs, capMs: o.requestTimeoutMs });
    this.uploadBudget = new LatencyBudget({ initialMsPerUnit: 1000 / o.initialUploadBytesPerSecond, slack: o.deadlineSlack, floorMs: o.minLoadWeightsTimeoutMs, capMs: o.loadWeightsTimeoutMs });
    this.sync = new ReplicaSync(this.uploadBudget, o, o.onEvent);
    this.replicas = addresses.map((a) => this.openReplica(a));
    if (source && source.refreshMs > 0) this.scheduleRefresh();
  }

  /**
   * A pool following `source`: its first addresses are waited for while the
   * source has none yet (at most waitMs), then it refreshes every refreshMs.
   */
  static async open(source: SamplerAddressSource, options: SamplerPoolOptions = {}, waitMs = 60_000, signal?: AbortSignal): Promise<SamplerPool> {
    return new SamplerPool(await firstAddresses(source, waitMs, signal), options, source);
  }

  /** The replicas' addresses now. */
  get addresses(): readonly string[] {
    return this.replicas.map((r) => r.address);
  }

  private openReplica(address: string): Replica {
    if (!this.indexOf.has(address)) this.indexOf.set(address, this.indexOf.size);
    return new Replica(address, this.indexOf.get(address)!);
  }

  /**
   * Makes the pool's replicas `addresses`: a new one joins (and gets the last
   * pushed weights before any prompt), a missing one leaves (its prompts in
   * flight are re-issued on the others).
   */
  setAddresses(addresses: readonly string[]): void {
    if (this.closed) return;
    if (addresses.length === 0) throw new Error('setAddresses: empty, expected at least one PolicySampler address');
    const wanted = new Set(addresses);
    for (const r of this.replicas.filter((r) => !wanted.has(r.address))) {
      r.remove();
      this.removed++;
      this.opts.onEvent?.({ kind: 'removed', sampler: r.address });
    }
    const kept = this.replicas.filter((r) => !r.removed);
    const have = new Set(kept.map((r) => r.address));
    for (const address of wanted) {
      if (have.has(address)) continue;
      const r = this.openReplica(address);
      kept.push(r);
      this.added++;
      this.opts.onEvent?.({ kind: 'added', sampler: address });
      this.sync.joined(r);
    }
    this.replicas = kept;
  }

  /** Asks the source again, follows it, and probes the replicas' weights versions (restarts); a failing source leaves the pool as it is. */
  async refresh(): Promise<void> {
    if (!this.source || this.closed) return;
    try {
      this.setAddresses(await this.source.resolve());
    } catch (err) {
      this.opts.onEvent?.({ kind: 'source-error', sampler: this.source.description, detail: (err as Error).message });
    }
    await this.sync.probe(this.replicas, Math.min(5_000, Math.max(1_000, this.source.refreshMs)));
    this.sync.kick(this.replicas);
  }

  private scheduleRefresh(): void {
    this.refreshTimer = setTimeout(() => {
      void this.refresh().finally(() => {
        if (!this.closed) this.scheduleRefresh();
      });
    }, this.source!.refreshMs);
    this.refreshTimer.unref();
  }

  private maxAttempts(): number {
    return this.opts.maxAttemptsPerPrompt ?? 2 * this.replicas.length + 1;
  }

  /**
   * Samples n completions for every prompt. Resolves when every prompt has a
   * complete set; rejects when a prompt failed maxAttemptsPerPrompt times
   * (naming it and the errors), when no replica could take a prompt for
   * requestTimeoutMs, or when the signal aborts.
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
    const attempts = new Map<string, { count: number; timeouts: number; failedOn: Set<Replica>; errors: string[] }>(prompts.map((p) => [p.id, { count: 0, timeouts: 0, failedOn: new Set(), errors: [] }]));
    const units = n * (options.sampling.maxNewTokens ?? this.opts.assumedMaxNewTokens);
    const pending: RolloutPrompt[] = [...prompts];
    const inFlight = new Map<Replica, number>();
    let retries = 0;
    let fatal: Error | null = null;
    const running = new Set<Promise<void>>();

    const attempt = async (p: RolloutPrompt, r: Replica): Promise<void> => {
      const a = attempts.get(p.id)!;
      a.count++;
      const got = new Map<number, Completion>();
      const began = Date.now();
      const deadlineMs = this.generateBudget.deadlineMs(units, a.timeouts);
      const signal = options.signal ? AbortSignal.any([options.signal, r.abort.signal]) : r.abort.signal;
      try {
        const stream = r.client.serverStream(
          'generate',
          {
            prompts: [{ input: { $case: 'tokenIds', value: { ids: [...p.tokenIds] } } }],
            n,
            sampling: { ...options.sampling, stop: options.sampling.stop ?? [], stopTokenIds: options.sampling.stopTokenIds ?? [], logprobs: true, seed: promptSeed(options.seed, p.id) },
            // A replica that lost the weights it acknowledged (restarted) refuses instead of sampling from older ones.
            minWeightsVersion: r.heldVersion > 0 ? r.heldVersion : undefined,
            requestId: p.id,
          },
          { deadlineMs, signal },
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
        r.recovered();
        done.set(p.id, rolloutsOf(p.id, got, r.address));
      } catch (err) {
        if (options.signal?.aborted) return;
        if (r.removed) {
          // It left the pool: not a failure of the prompt, which goes to another replica.
          a.count--;
          retries++;
          this.opts.onRetry?.({ promptId: p.id, sampler: r.address, attempt: a.count, error: 'the replica left the pool' });
          pending.push(p);
          return;
        }
        const code = (err as Partial<ServiceError>).code;
        const message = code === status.DEADLINE_EXCEEDED ? `${describeError(err)} (deadline ${deadlineMs} ms for ${units} requested tokens)` : describeError(err);
        if (code === status.DEADLINE_EXCEEDED) a.timeouts++;
        if (code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED || code === status.CANCELLED) r.bench(this.opts);
        const lost = lostWeights(err);
        if (lost) this.sync.restarted(r, lost.reported, `Generate refused: ${message}`);
        a.failedOn.add(r);
        a.errors.push(`${r.address}: ${message}`);
        this.opts.onRetry?.({ promptId: p.id, sampler: r.address, attempt: a.count, error: message });
        // A refusal of the request itself (bad argument) fails the same way everywhere: stop now.
        if (code === status.INVALID_ARGUMENT || a.count >= this.maxAttempts()) {
          fatal ??= new Error(`prompt ${p.id}: no complete set of ${n} completions after ${a.count} attempt(s): ${a.errors.join('; ')}`);
          return;
        }
        retries++;
        pending.push(p); // the partial completions in `got` are dropped with this attempt
      }
    };

    let stalledSince = 0;
    while (done.size < prompts.length) {
      if (fatal) break;
      if (options.signal?.aborted) throw new Error('generate: aborted');
      this.sync.kick(this.replicas);
      let dispatched = false;
      while (pending.length > 0) {
        const p = pending[0];
        const r = this.pickReplica(inFlight, attempts.get(p.id)!.failedOn);
        if (!r) break;
        pending.shift();
        inFlight.set(r, (inFlight.get(r) ?? 0) + 1);
        const job: Promise<void> = attempt(p, r).finally(() => {
          inFlight.set(r, inFlight.get(r)! - 1);
          running.delete(job);
        });
        running.add(job);
        dispatched = true;
      }
      if (running.size > 0) {
        stalledSince = 0;
        await Promise.race(running);
      } else if (!dispatched && pending.length > 0) {
        // Every replica benched, or (elastic pool) every one still being brought to the newest weights: wait.
        stalledSince ||= Date.now();
        if (Date.now() - stalledSince > this.opts.requestTimeoutMs) {
          fatal = new Error(`${pending.length} prompt(s) waited ${this.opts.requestTimeoutMs} ms for a sampler replica holding weights version ${this.sync.latestVersion}: ${this.replicas.map((r) => `${r.address} holds ${r.heldVersion}${r.needsSync ? ' (being re-synced)' : ''}`).join('; ')}`);
          break;
        }
        await sleep(Math.min(this.opts.benchMs, 250), options.signal);
      }
    }
    await Promise.all(running);
    if (fatal) throw fatal;
    if (options.signal?.aborted) throw new Error('generate: aborted');
    const rollouts = prompts.flatMap((p) => done.get(p.id)!);
    const perSampler: Record<string, number> = Object.fromEntries(this.replicas.map((r) => [r.address, 0]));
    for (const r of rollouts) perSampler[r.sampler] = (perSampler[r.sampler] ?? 0) + 1;
    for (const r of this.replicas) {
      r.acceptedLast = perSampler[r.address];
      r.acceptedTotal += r.acceptedLast;
    }
    return { rollouts, retries, perSampler };
  }

  /**
   * Next replica round-robin with a free slot, preferring one this prompt has
   * not failed on and that is not benched; null when none has a free slot. A
   * replica being brought to the newest weights (joined, restarted) gets none.
   */
  private pickReplica(inFlight: Map<Replica, number>, failedOn: Set<Replica>): Replica | null {
    const list = this.replicas;
    const count = list.length;
    const now = Date.now();
    const latest = this.sync.latestVersion;
    const free = (r: Replica) => !r.needsSync && (inFlight.get(r) ?? 0) < this.opts.maxInFlightPerSampler;
    // Usable: not benched, and holding the newest weights this pool pushed.
    const usable = (r: Replica) => r.benchedUntil <= now && r.heldVersion >= latest && !r.needsSync;
    const tiers: ((r: Replica) => boolean)[] = [(r) => free(r) && !failedOn.has(r) && usable(r), (r) => free(r) && usable(r)];
    // Only when no replica is usable do we try the others (a benched one may be back).
    if (!list.some(usable)) tiers.push((r) => free(r) && !failedOn.has(r), free);
    for (const ok of tiers) {
      for (let k = 0; k < count; k++) {
        const i = (this.cursor + k) % count;
        if (ok(list[i])) {
          this.cursor = (i + 1) % count;
          return list[i];
        }
      }
    }
    return null;
  }

  /**
   * Uploads a full safetensors file as `version` to every replica, in
   * parallel, each with a deadline scaled to the bytes. Each ack must name
   * `version` (else the replica is reported failed). Uploads to benched
   * replicas go on in the background and are not waited for, unless no other
   * replica acknowledged. Rejects only when no replica acknowledged. The pool
   * keeps the bytes for replicas that join or restart later.
   */
  async pushWeights(safetensorsBytes: Uint8Array, version: number): Promise<WeightsPushResult> {
    if (!Number.isSafeInteger(version) || version < 1) throw new Error(`weights version: got ${version}, expected an integer >= 1`);
    const weights: PushedWeights = { version, bytes: safetensorsBytes.byteLength, chunks: [...weightsChunks(safetensorsBytes, { version, format: WeightsFormat.SAFETENSORS_FULL })] };
    const deadlineMs = this.uploadBudget.deadlineMs(weights.bytes);
    const result: WeightsPushResult = { acked: [], failed: [], duplicates: [], background: [] };
    if (version >= this.sync.latestVersion) this.sync.latest = weights;
    const upload = async (r: Replica, into: WeightsPushResult): Promise<void> => {
      const outcome = await this.sync.upload(r, weights, deadlineMs);
      if (!outcome.ok) into.failed.push({ sampler: r.address, error: outcome.error });
      else {
        into.acked.push(r.address);
        if (outcome.duplicate) into.duplicates.push(r.address);
      }
    };
    const now = Date.now();
    const waited: Promise<void>[] = [];
    const background: Promise<void>[] = [];
    // Outcomes of background uploads land here, not in the result the caller already holds.
    const late: WeightsPushResult = { acked: [], failed: [], duplicates: [], background: [] };
    for (const r of this.replicas) {
      if (r.uploading) {
        result.failed.push({ sampler: r.address, error: 'an earlier upload to it is still in flight' });
        continue;
      }
      const inBackground = r.benchedUntil > now;
      const job = upload(r, inBackground ? late : result).finally(() => (r.uploading = null));
      r.uploading = job;
      if (inBackground) {
        result.background.push(r.address);
        background.push(job);
      } else waited.push(job);
    }
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
    return Promise.all(this.replicas.map((r) => r.client.unary('getInfo', {}, { deadlineMs: timeoutMs }).then((info) => info.weightsVersion, () => null)));
  }

  /** Size, re-syncs, restarts, joins and leaves, and each replica's version and accepted completions. */
  stats(): SamplerPoolStats {
    const now = Date.now();
    const latest = this.sync.latestVersion;
    const replicas = this.replicas.map((r) => ({ address: r.address, index: r.index, weightsVersion: r.heldVersion, benched: r.benchedUntil > now, needsSync: r.needsSync, acceptedLast: r.acceptedLast, acceptedTotal: r.acceptedTotal }));
    return {
      size: replicas.length,
      ready: replicas.filter((r) => !r.benched && !r.needsSync && r.weightsVersion >= latest).length,
      resyncs: this.sync.resyncs,
      restarts: this.sync.restarts,
      added: this.added,
      removed: this.removed,
      replicas,
    };
  }

  close(): void {
    this.closed = true;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    for (const r of this.replicas) r.client.close();
  }
}
