/**
 * One PolicySampler replica as the sampler pool sees it (its client, bench,
 * the newest weights version it acknowledged), and how the pool keeps an
 * elastic set of replicas on the newest weights.
 *
 * The pool keeps the bytes and version of its last push. A replica that joins
 * after a push, and one noticed holding older weights than it acknowledged (it
 * restarted with its initial weights), is marked `needsSync`: it gets no
 * prompt until an upload of those bytes lands, and the upload is retried after
 * each bench until it does. A restart is noticed two ways: GetInfo reports a
 * lower weights_version than the replica acknowledged (the pool's refresh
 * probes), or a Generate request, which carries min_weights_version = the
 * acknowledged version, is refused with FAILED_PRECONDITION about weights.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { PolicySamplerService } from '@posttrain/proto';
import type { WeightsChunk } from '@posttrain/proto';
import { createClient, status } from '@posttrain/rpc';
import type { RpcClient } from '@posttrain/rpc';
import type { LatencyBudget } from './latency-budget';
import type { SamplerPoolEvent } from './rollout-types';

export function describeError(err: unknown): string {
  const e = err as Partial<ServiceError>;
  if (typeof e.code === 'number') return `${status[e.code] ?? e.code}: ${e.details ?? e.message}`;
  return (err as Error).message ?? String(err);
}

export interface BenchTuning {
  benchMs: number;
  maxBenchMs: number;
}

export class Replica {
  readonly client: RpcClient<typeof PolicySamplerService>;
  /** Aborted when the replica leaves the pool: its calls in flight are cancelled. */
  readonly abort = new AbortController();
  benchedUntil = 0;
  /** Failures in a row (UNAVAILABLE, deadline, failed upload); a success resets it. */
  failures = 0;
  /** Newest weights version it acknowledged (0: none this pool pushed, or it restarted). */
  heldVersion = 0;
  /** Upload in flight, so that a slow one is not stacked. */
  uploading: Promise<void> | null = null;
  /** Gets no prompt until it holds the pool's newest weights: it joined after a push, or restarted. */
  needsSync = false;
  removed = false;
  /** Completions accepted from it by the pool's last generate call, and in all. */
  acceptedLast = 0;
  acceptedTotal = 0;

  constructor(
    readonly address: string,
    /** Stable number of the address in this pool (order of first appearance). */
    readonly index: number,
  ) {
    this.client = createClient(PolicySamplerService, [address], { maxAttempts: 1, serviceLabel: 'policy sampler', channelOptions: { 'grpc.initial_reconnect_backoff_ms': 250, 'grpc.max_reconnect_backoff_ms': 2_000 } });
  }

  /** A failure: benched for benchMs, doubled per failure in a row, at most maxBenchMs. */
  bench(tuning: BenchTuning): void {
    this.failures++;
    this.benchedUntil = Date.now() + Math.min(tuning.maxBenchMs, tuning.benchMs * 2 ** (this.failures - 1));
  }

  recovered(): void {
    this.failures = 0;
    this.benchedUntil = 0;
  }

  /** Leaves the pool: calls in flight are cancelled (their prompts re-issued elsewhere) and the channel closed. */
  remove(): void {
    this.removed = true;
    this.abort.abort();
    this.client.close();
  }
}

/** A push's payload, kept so that a replica that joins or restarts can be brought to it. */
export interface PushedWeights {
  version: number;
  bytes: number;
  chunks: WeightsChunk[];
}

export type UploadOutcome = { ok: true; duplicate: boolean } | { ok: false; error: string };

/** A FAILED_PRECONDITION about weights (min_weights_version not met): the replica lost the weights it acknowledged. */
export function lostWeights(err: unknown): { reported: number } | null {
  const e = err as Partial<ServiceError>;
  if (e.code !== status.FAILED_PRECONDITION || !/weights/i.test(`${e.details ?? e.message}`)) return null;
  const m = /loaded weights version (\d+)/.exec(`${e.details ?? e.message}`);
  return { reported: m ? Number(m[1]) : 0 };
}

export class ReplicaSync {
  /** The last push: what a joining or restarted replica is brought to. */
  latest: PushedWeights | null = null;
  /** Uploads of the newest weights outside a push (a replica joined or restarted). */
  resyncs = 0;
  /** Replicas noticed holding older weights than they acknowledged. */
  restarts = 0;

  constructor(
    private readonly uploadBudget: LatencyBudget,
    private readonly tuning: BenchTuning,
    private readonly onEvent?: (e: SamplerPoolEvent) => void,
  ) {}

  get latestVersion(): number {
    return this.latest?.version ?? 0;
  }

  /**
   * Uploads `weights` to `r` with a deadline scaled to the bytes; the ack must
   * name the version and the byte count. A failure benches the replica.
   */
  async upload(r: Replica, weights: PushedWeights, deadlineMs: number): Promise<UploadOutcome> {
    const began = Date.now();
    try {
      const ack = await r.client.clientStream('loadWeights', weights.chunks, { deadlineMs, signal: r.abort.signal });
      if (ack.version !== weights.version) throw new Error(`acknowledged version ${ack.version}, expected ${weights.version}`);
      if (ack.bytesReceived !== weights.bytes) throw new Error(`acknowledged ${ack.bytesReceived} bytes, sent ${weights.bytes}`);
      this.uploadBudget.observe(Date.now() - began, weights.bytes);
      r.heldVersion = Math.max(r.heldVersion, weights.version);
      if (r.heldVersion >= this.latestVersion) r.needsSync = false;
      r.recovered();
      return { ok: true, duplicate: ack.duplicate };
    } catch (err) {
      const code = (err as Partial<ServiceError>).code;
      r.bench(this.tuning);
      return { ok: false, error: code === status.DEADLINE_EXCEEDED ? `${describeError(err)} (deadline ${deadlineMs} ms for ${weights.bytes} bytes)` : describeError(err) };
    }
  }

  /** A replica that joined the pool: once the pool has pushed, it gets those weights before any prompt. */
  joined(r: Replica): void {
    if (!this.latest) return;
    r.needsSync = true;
    this.sync(r);
  }

  /** A replica holding older weights than it acknowledged (it restarted): re-synced, not dropped. */
  restarted(r: Replica, reported: number, why: string): void {
    if (r.removed || r.needsSync) return;
    this.restarts++;
    r.heldVersion = Math.min(r.heldVersion, reported);
    r.needsSync = true;
    r.recovered(); // it answered: a bench from its downtime must not hold the re-sync back
    this.onEvent?.({ kind: 'restarted', sampler: r.address, detail: why });
    this.sync(r);
  }

  /** Uploads the newest weights to a replica that needs them, unless an upload is in flight or it is benched. */
  sync(r: Replica): void {
    const weights = this.latest;
    if (!weights || r.removed || !r.needsSync) return;
    if (r.heldVersion >= weights.version) {
      r.needsSync = false;
      return;
    }
    if (r.uploading || r.benchedUntil > Date.now()) return;
    this.resyncs++;
    const job = this.upload(r, weights, this.uploadBudget.deadlineMs(weights.bytes)).then((outcome) => {
      if (outcome.ok) this.onEvent?.({ kind: 'resynced', sampler: r.address, detail: `weights version ${weights.version}` });
      else if (!r.removed) this.onEvent?.({ kind: 'resync-failed', sampler: r.address, detail: `weights version ${weights.version}: ${outcome.error}` });
    });
    r.uploading = job.finally(() => {
      r.uploading = null;
      this.sync(r); // a newer push may have come meanwhile
    });
  }

  /** Starts the syncs that wait (a bench ran out, an older upload finished). */
  kick(replicas: readonly Replica[]): void {
    for (const r of replicas) this.sync(r);
  }

  /** GetInfo of every replica holding weights this pool pushed: one that reports an older version restarted. */
  async probe(replicas: readonly Replica[], timeoutMs: number): Promise<void> {
    await Promise.all(
      replicas
        .filter((r) => !r.removed && !r.needsSync && !r.uploading && r.heldVersion > 0)
        .map(async (r) => {
          const held = r.heldVersion;
          let reported: number;
          try {
            reported = (await r.client.unary('getInfo', {}, { deadlineMs: timeoutMs, signal: r.abort.signal })).weightsVersion;
          } catch {
            return; // unreachable: its Generate calls and uploads bench it
          }
          // Compared with what it held when asked: an upload that landed meanwhile is not a restart.
          if (reported < held && r.heldVersion === held) this.restarted(r, reported, `GetInfo reports weights version ${reported}; it acknowledged ${held}`);
        }),
    );
  }
}
