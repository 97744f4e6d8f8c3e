/**
 * The generation engine of a policy-sampler replica: one served model, its
 * batch scheduler (batch-scheduler.ts: continuous batching over a KV cache),
 * its weight swaps (weight-swap.ts) and log-probs under the weights being
 * served. Requests are domain requests (generation-request.ts); each passes
 * admission (request-admission.ts) before it is queued.
 */
import type { Registry } from 'prom-client';
import { computeBatchLogProbs, type BatchLogProbs, type LogProbsPair } from './batch-log-probs';
import { BatchScheduler } from './batch-scheduler';
import { EngineStats, type EngineStatsSnapshot } from './engine-stats';
import type { GeneratedCompletion, GenerationRequest } from './generation-request';
import { admitRequest, checkMinWeightsVersion } from './request-admission';
import type { ServedModel } from './served-model';
import { preconditionFailed, ServingError } from './serving-error';
import { WeightSwap, type WeightsLoadResult } from './weight-swap';
import type { WeightsFormatName, WeightsPayload, WeightsUpload } from './weights-update';

export interface EngineOptions {
  /** Most sequences decoded together. */
  maxBatchSequences: number;
  /** Most tokens (prompt + max_new_tokens, summed over running sequences) reserved at once; a longer single sequence runs alone. */
  maxBatchTokens: number;
  /** Most requests waiting for a batch slot; one more is refused (resource-exhausted). */
  maxQueueDepth: number;
  /** Default and upper bound of max_new_tokens. */
  maxNewTokens: number;
  /** Most sequences (prompts x n) in one request. */
  maxRequestSequences?: number;
  /** Prometheus registry for the engine's metrics. */
  registry?: Registry;
  /** Clock in ms (tests). */
  now?: () => number;
}

export interface EngineInfo {
  weightsVersion: number;
  /** Format of the last applied upload; 'none' while the weights are those the model was loaded with. */
  weightsFormat: WeightsFormatName | 'none';
  /** Requests waiting for a batch slot. */
  queueDepth: number;
  stats: EngineStatsSnapshot;
}

/** Per-token log-probs of (prompt, completion) pairs, as ComputeLogProbs asks for them. */
export interface LogProbsRequest {
  pairs: readonly LogProbsPair[];
  /** Logits are divided by it before the softmax; default 1. */
  temperature?: number;
  returnEntropies?: boolean;
  /** Refuse (failed-precondition) while the loaded weights are older than this version. */
  minWeightsVersion?: number;
}

export class GenerationEngine {
  private readonly scheduler: BatchScheduler;
  private readonly swaps: WeightSwap;
  private readonly stats: EngineStats;
  private readonly maxRequestSequences: number;
  private closed = false;

  constructor(
    readonly served: ServedModel,
    private readonly options: EngineOptions,
  ) {
    if (!served.model.heads.lm) throw new Error(`${served.dir}: the model has no LM head (a sequence-classification model cannot generate)`);
    for (const key of ['maxBatchSequences', 'maxBatchTokens', 'maxQueueDepth', 'maxNewTokens'] as const) {
      const value = options[key];
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${key}: got ${value}, expected an integer >= 1`);
    }
    this.maxRequestSequences = options.maxRequestSequences ?? 1024;
    this.swaps = new WeightSwap(served.model, () => this.scheduler.kick());
    this.stats = new EngineStats(options.now, 60_000, options.registry, {
      queueDepth: () => this.scheduler.queueDepth,
      running: () => this.scheduler.runningSequences,
      weightsVersion: () => this.swaps.version,
    });
    this.scheduler = new BatchScheduler(served, options, this.stats, this.swaps);
  }

  get weightsVersion(): number {
    return this.swaps.version;
  }

  info(): EngineInfo {
    return { weightsVersion: this.swaps.version, weightsFormat: this.swaps.format, queueDepth: this.scheduler.queueDepth, stats: this.stats.snapshot(this.scheduler.runningSequences) };
  }

  /**
   * Admits and enqueues a request; returns the stream of its completions
   * (each yield: the completions finished since the previous one). Throws
   * ServingError synchronously: invalid-argument, failed-precondition (engine
   * shut down, or weights older than minWeightsVersion), resource-exhausted
   * (queue full). Aborting `signal` drops the request's sequences at the next step.
   */
  submit(request: GenerationRequest, signal?: AbortSignal): AsyncIterable<GeneratedCompletion[]> {
    if (this.closed) throw preconditionFailed('the engine is shut down');
    const admitted = admitRequest(request, this.served, { maxNewTokens: this.options.maxNewTokens, maxRequestSequences: this.maxRequestSequences }, this.swaps.version);
    return this.scheduler.enqueue(admitted, signal);
  }

  /** Log-probs under the weights being served; a weight swap waits until it is done. */
  async computeLogProbs(request: LogProbsRequest, limits: { maxBatchSequences?: number; maxBatchTokens?: number } = {}): Promise<BatchLogProbs & { weightsVersion: number }> {
    checkMinWeightsVersion(this.swaps.version, request.minWeightsVersion);
    return this.swaps.whileReading(async () => {
      const version = this.swaps.version;
      const out = await computeBatchLogProbs(this.served.model, request.pairs, {
        temperature: request.temperature,
        returnEntropies: request.returnEntropies,
        maxBatchSequences: limits.maxBatchSequences ?? this.options.maxBatchSequences,
        maxBatchTokens: limits.maxBatchTokens ?? this.options.maxBatchTokens,
      });
      return { ...out, weightsVersion: version };
    });
  }

  /** Early check of an upload's header (version, manifest) before its data arrives; throws ServingError. */
  checkUploadHeader(upload: WeightsUpload): void {
    this.swaps.checkUploadHeader(upload);
  }

  /** Applies a verified upload between decoding steps, with no sequence running (see WeightSwap.load). */
  loadWeights(upload: WeightsUpload, payload: WeightsPayload): Promise<WeightsLoadResult> {
    return this.swaps.load(upload, payload);
  }

  /** Refuses new work, fails waiting requests and frees the cache; the model itself belongs to the caller. */
  close(): void {
    this.closed = true;
    this.scheduler.close(new ServingError('cancelled', '', 'the server is shutting down'));
    this.swaps.close();
  }
}
