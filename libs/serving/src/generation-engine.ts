/**
 * The generation engine of a policy-sampler replica: continuous batching over
 * a KV cache.
 *
 * Requests enter a bounded queue. A scheduler loop, one decoding step at a
 * time, (1) drops the sequences of cancelled requests, (2) admits queued
 * sequences while the batch stays within `maxBatchSequences` sequences and
 * `maxBatchTokens` reserved tokens (prompt + max_new_tokens per sequence),
 * prefilling their prompts in one forward pass whose keys/values are merged
 * into the running cache, (3) samples one token for every running sequence
 * from its own logits with its own random stream, (4) retires finished
 * sequences, and (5) runs one shared forward pass for the next token of all
 * remaining sequences. Between steps it yields to the event loop, so RPCs are
 * read and answered while a batch runs.
 *
 * Reproducibility: sequence (prompt p, sample s) of a request with seed S
 * draws from Rng(S).fork(`p/s`), so its tokens depend only on its own logits,
 * never on what else is batched with it. Rows of different lengths are
 * left-padded in the cache and padded keys are masked with exact zeros, so a
 * row's logits match its solo computation up to float rounding.
 *
 * Weight swaps: a prepared upload waits until no sequence is running (the
 * scheduler stops admitting meanwhile) and no log-prob computation is in
 * flight, then is applied in one synchronous block; every completion is thus
 * produced by exactly one weights version.
 */
import { randomInt } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { forwardHidden, lmLogits, positionsFromMask, sampleToken, type KvCache, type LlamaModel } from '@posttrain/model';
import { FinishReason, WeightsFormat, type Completion, type GenerateRequest, type LogProbsRequest, type WeightsHeader } from '@posttrain/proto';
import { Rng } from '@posttrain/random';
import type { Registry } from 'prom-client';
import { disposeCache, mergeCaches, selectRows, type BatchCache } from './batch-cache';
import { computeBatchLogProbs, type BatchLogProbs } from './batch-log-probs';
import { EngineStats, type EngineStatsSnapshot } from './engine-stats';
import { findStopString } from './find-stop-string';
import type { ServedModel } from './served-model';
import { invalidField, preconditionFailed, ServingError } from './serving-error';
import { checkWeightsManifest, prepareWeights, type PreparedWeights } from './weights-update';

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

interface SamplingSettings {
  temperature: number;
  topK: number;
  topP: number;
}

interface RequestState {
  params: SamplingSettings;
  maxNewTokens: number;
  stopIds: Set<number>;
  stopStrings: string[];
  logprobs: boolean;
  /** Sequences not yet admitted to the batch. */
  waiting: SequenceState[];
  remaining: number;
  ready: Completion[];
  wake: (() => void) | null;
  error: Error | null;
  cancelled: boolean;
}

interface SequenceState {
  request: RequestState;
  promptIndex: number;
  sampleIndex: number;
  promptIds: number[];
  tokens: number[];
  logProbs: number[];
  rng: Rng;
  /** Rotary position of the next token. */
  nextPosition: number;
  /** Next-token logits [V], set after a forward pass. */
  logits: Float32Array | null;
  weightsVersion: number;
  text: string;
  stopString: string;
  finish: FinishReason | null;
}

interface PendingSwap {
  prepared: PreparedWeights;
  header: WeightsHeader;
  resolve: () => void;
  reject: (e: Error) => void;
}

export interface WeightsLoadResult {
  version: number;
  duplicate: boolean;
  tensorsLoaded: number;
}

export interface EngineInfo {
  weightsVersion: number;
  weightsFormat: WeightsFormat;
  /** Requests waiting for a batch slot. */
  queueDepth: number;
  stats: EngineStatsSnapshot;
}


export class GenerationEngine {
  private readonly model: LlamaModel;
  private readonly queue: RequestState[] = [];
  private active: SequenceState[] = [];
  private cache: BatchCache | null = null;
  private loopRunning = false;
  private readers = 0;
  private swap: PendingSwap | null = null;
  private weightsLock: Promise<unknown> = Promise.resolve();
  private version = 0;
  private sha256 = '';
  private format: WeightsFormat = WeightsFormat.UNSPECIFIED;
  private closed = false;
  private readonly stats: EngineStats;
  private readonly maxRequestSequences: number;

  constructor(
    readonly served: ServedModel,
    private readonly options: EngineOptions,
  ) {
    this.model = served.model;
    if (!this.model.heads.lm) throw new Error(`${served.dir}: the model has no LM head (a sequence-classification model cannot generate)`);
    for (const key of ['maxBatchSequences', 'maxBatchTokens', 'maxQueueDepth', 'maxNewTokens'] as const) {
      const v = options[key];
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${key}: got ${v}, expected an integer >= 1`);
    }
    this.maxRequestSequences = options.maxRequestSequences ?? 1024;
    this.stats = new EngineStats(options.now, 60_000, options.registry, {
      queueDepth: () => this.queue.length,
      running: () => this.active.length,
      weightsVersion: () => this.version,
    });
  }

  get weightsVersion(): number {
    return this.version;
  }

  info(): EngineInfo {
    return { weightsVersion: this.version, weightsFormat: this.format, queueDepth: this.queue.length, stats: this.stats.snapshot(this.active.length) };
  }

  // ---------------------------------------------------------------- Generate

  /** Tokenises one prompt; throws invalid-argument naming it. */
  private promptIds(req: GenerateRequest, i: number): number[] {
    const field = `prompts[${i}]`;
    const input = req.prompts[i].input;
    const tok = this.served.tokenizer;
    const V = this.model.config.vocabSize;
    let ids: number[];
    if (!input) throw invalidField(`${field}.input`, 'not set, expected one of token_ids, messages, text');
    if (input.$case === 'tokenIds') {
      ids = [...input.value.ids];
      if (ids.length === 0) throw invalidField(`${field}.token_ids.ids`, 'empty, expected at least one token id');
      ids.forEach((id, j) => {
        if (!Number.isInteger(id) || id < 0 || id >= V) throw invalidField(`${field}.token_ids.ids[${j}]`, `got ${id}, expected a token id in [0, ${V})`);
      });
      return ids;
    }
    if (!tok) throw invalidField(`${field}.${input.$case === 'text' ? 'text' : 'messages'}`, `this model (${this.served.dir}) has no tokenizer.json; send token_ids`);
    try {
      ids = input.$case === 'text' ? tok.encode(input.value) : tok.encodeChatIds(input.value.messages, { addGenerationPrompt: true });
    } catch (e) {
      throw invalidField(`${field}.${input.$case === 'text' ? 'text' : 'messages'}`, `cannot be tokenised: ${(e as Error).message}`);
    }
    if (ids.length === 0) throw invalidField(`${field}.text`, 'tokenises to no tokens');
    const bad = ids.findIndex((id) => id >= V);
    if (bad >= 0) throw invalidField(field, `tokenises to id ${ids[bad]}, outside the model's vocabulary of ${V}`);
    return ids;
  }

  /**
   * Validates and enqueues a request; returns the stream of its completions
   * (each yield: the completions finished since the previous one). Throws
   * ServingError synchronously: invalid-argument, failed-precondition (weights
   * older than min_weights_version), resource-exhausted (queue full).
   * Aborting `signal` drops the request's sequences at the next step.
   */
  submit(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<Completion[]> {
    if (this.closed) throw preconditionFailed('the engine is shut down');
    if (req.minWeightsVersion !== undefined && this.version < req.minWeightsVersion) {
      throw preconditionFailed(`loaded weights version ${this.version} is older than min_weights_version ${req.minWeightsVersion}`, 'min_weights_version');
    }
    if (req.prompts.length === 0) throw invalidField('prompts', 'empty, expected at least one prompt');
    const n = req.n === 0 ? 1 : req.n;
    if (!Number.isInteger(n) || n < 1) throw invalidField('n', `got ${req.n}, expected >= 1 (0 means 1)`);
    if (req.prompts.length * n > this.maxRequestSequences) throw invalidField('n', `${req.prompts.length} prompts x n=${n} = ${req.prompts.length * n} sequences, more than ${this.maxRequestSequences} per request`);
    const s = req.sampling;
    const temperature = s?.temperature ?? 1;
    const topP = s?.topP ?? 1;
    const topK = s?.topK ?? 0;
    if (!(Number.isFinite(temperature) && temperature >= 0)) throw invalidField('sampling.temperature', `got ${temperature}, expected >= 0 (0 means greedy)`);
    if (!(Number.isFinite(topP) && topP > 0 && topP <= 1)) throw invalidField('sampling.top_p', `got ${topP}, expected a value in (0, 1]`);
    if (!Number.isInteger(topK) || topK < 0) throw invalidField('sampling.top_k', `got ${topK}, expected >= 0 (0 disables top-k)`);
    const maxNew = s?.maxNewTokens ?? this.options.maxNewTokens;
    if (!Number.isInteger(maxNew) || maxNew < 1 || maxNew > this.options.maxNewTokens) throw invalidField('sampling.max_new_tokens', `got ${maxNew}, expected 1..${this.options.maxNewTokens}`);
    const V = this.model.config.vocabSize;
    (s?.stopTokenIds ?? []).forEach((id, j) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw invalidField(`sampling.stop_token_ids[${j}]`, `got ${id}, expected a token id in [0, ${V})`);
    });
    (s?.stop ?? []).forEach((str, j) => {
      if (str.length === 0) throw invalidField(`sampling.stop[${j}]`, 'empty, expected a non-empty stop string');
    });
    if ((s?.stop.length ?? 0) > 0 && !this.served.tokenizer) throw invalidField('sampling.stop', 'this model has no tokenizer.json, so completions have no text to search; use stop_token_ids');
    const seed = s?.seed ?? randomInt(2 ** 47);
    if (!Number.isSafeInteger(seed) || seed < 0) throw invalidField('sampling.seed', `got ${seed}, expected an integer in [0, 2^53)`);
    const maxPos = this.model.config.maxPositionEmbeddings;
    const prompts = req.prompts.map((_, i) => {
      const ids = this.promptIds(req, i);
      if (ids.length >= maxPos) throw invalidField(`prompts[${i}]`, `${ids.length} prompt tokens leave no room to generate within max_position_embeddings ${maxPos}`);
      return ids;
    });
    if (this.queue.length >= this.options.maxQueueDepth) {
      throw new ServingError('resource-exhausted', '', `the queue is full (${this.queue.length} requests waiting, max_queue_depth ${this.options.maxQueueDepth}); retry later or on another replica`);
    }
    const root = new Rng(seed);
    const state: RequestState = {
      params: { temperature, topK, topP },
      maxNewTokens: maxNew,
      stopIds: new Set([...this.model.generationDefaults.eosTokenIds, ...(s?.stopTokenIds ?? [])]),
      stopStrings: [...(s?.stop ?? [])],
      logprobs: s?.logprobs ?? false,
      waiting: [],
      remaining: prompts.length * n,
      ready: [],
      wake: null,
      error: null,
      cancelled: false,
    };
    prompts.forEach((ids, p) => {
      for (let k = 0; k < n; k++) {
        state.waiting.push({
          request: state, promptIndex: p, sampleIndex: k, promptIds: ids, tokens: [], logProbs: [], rng: root.fork(`${p}/${k}`),
          nextPosition: ids.length, logits: null, weightsVersion: 0, text: '', stopString: '', finish: null,
        });
      }
    });
    this.queue.push(state);
    const onAbort = () => {
      state.cancelled = true;
      state.error = new ServingError('cancelled', '', 'the request was cancelled');
      state.wake?.();
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    this.kick();
    return this.results(state, () => signal?.removeEventListener('abort', onAbort));
  }

  private async *results(state: RequestState, cleanup: () => void): AsyncGenerator<Completion[]> {
    try {
      while (state.remaining > 0 || state.ready.length > 0) {
        if (state.ready.length > 0) {
          const batch = state.ready.splice(0);
          yield batch;
          continue;
        }
        if (state.error) throw state.error;
        await new Promise<void>((resolve) => (state.wake = resolve));
        state.wake = null;
      }
    } finally {
      // A consumer that stops early (or fails) must not leave sequences running.
      if (state.remaining > 0) state.cancelled = true;
      cleanup();
    }
  }

  // ---------------------------------------------------------------- scheduler

  private kick(): void {
    if (this.loopRunning) return;
    this.loopRunning = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.active.length > 0 || this.queue.length > 0 || this.swap) {
        const progressed = this.step();
        // Yield to I/O between steps; when idle (a swap waiting on readers), sleep a little instead of spinning.
        await new Promise<void>((r) => (progressed ? setImmediate(r) : setTimeout(r, 2)));
      }
    } finally {
      this.loopRunning = false;
    }
  }

  /** One scheduler step; returns whether it did any work. */
  private step(): boolean {
    this.dropCancelled();
    if (this.swap && this.active.length === 0 && this.readers === 0) {
      this.applySwap(this.swap);
      return true;
    }
    const admitted = this.swap ? [] : this.admit();
    if (this.active.length === 0 && admitted.length === 0) return false;
    try {
      if (admitted.length > 0) this.prefill(admitted);
      this.sampleAll();
      this.retireFinished();
      if (this.active.length > 0) this.decode();
    } catch (e) {
      this.failAll(e as Error);
    }
    return true;
  }

  private dropCancelled(): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].cancelled) this.queue.splice(i, 1);
    }
    if (this.active.some((s) => s.request.cancelled)) this.keepRows(this.active.map((s, i) => (s.request.cancelled ? -1 : i)).filter((i) => i >= 0));
  }

  private reserved(s: SequenceState): number {
    return s.promptIds.length + s.request.maxNewTokens;
  }

  /** Moves queued sequences into the batch, oldest request first, within the budgets. */
  private admit(): SequenceState[] {
    const admitted: SequenceState[] = [];
    let reserved = this.active.reduce((sum, s) => sum + this.reserved(s), 0);
    while (this.queue.length > 0) {
      const req = this.queue[0];
      const next = req.waiting[0];
      if (this.active.length + admitted.length >= this.options.maxBatchSequences) break;
      const need = this.reserved(next);
      const batchEmpty = this.active.length + admitted.length === 0;
      if (!batchEmpty && reserved + need > this.options.maxBatchTokens) break;
      req.waiting.shift();
      next.weightsVersion = this.version;
      admitted.push(next);
      reserved += need;
      if (req.waiting.length === 0) this.queue.shift();
    }
    return admitted;
  }

  /** Runs the prompts of newly admitted sequences (left-padded) and merges their keys/values into the batch cache. */
  private prefill(seqs: SequenceState[]): void {
    const B = seqs.length;
    const L = Math.max(...seqs.map((s) => s.promptIds.length));
    const ids = new Int32Array(B * L);
    const mask = new Uint8Array(B * L);
    seqs.forEach((s, b) => {
      ids.set(s.promptIds, b * L + L - s.promptIds.length);
      mask.fill(1, b * L + L - s.promptIds.length, (b + 1) * L);
    });
    const positions = positionsFromMask(mask, B, L);
    const { logits, keys, values } = this.forwardLast({ ids, batch: B, length: L, mask, positions }, undefined);
    const V = this.model.config.vocabSize;
    seqs.forEach((s, b) => (s.logits = logits.subarray(b * V, (b + 1) * V)));
    const fresh: BatchCache = { keys, values, keyMask: mask, keyPositions: positions, length: L };
    if (!this.cache) {
      this.cache = fresh;
    } else {
      const merged = mergeCaches(this.cache, this.active.length, fresh, B);
      disposeCache(this.cache);
      disposeCache(fresh);
      this.cache = merged;
    }
    this.active.push(...seqs);
  }

  /** Forward pass of `tokens` (optionally after the cache); returns last-position logits [B*V] and the full keys/values. */
  private forwardLast(tokens: { ids: Int32Array; batch: number; length: number; mask: Uint8Array; positions: Int32Array }, past: KvCache | undefined): { logits: Float32Array; keys: tf.Tensor4D[]; values: tf.Tensor4D[] } {
    const { batch: B, length: T } = tokens;
    const res = tf.tidy(() => {
      const out = forwardHidden(this.model, tokens, { past, returnCache: true });
      // Rows are left-padded, so every row's last position is real; a strided slice is far cheaper than a gather on wasm.
      const D = out.hidden.shape[1];
      const last = T === 1 ? out.hidden : tf.reshape(tf.slice(tf.reshape(out.hidden, [B, T, D]), [0, T - 1, 0], [B, 1, D]), [B, D]); // (B, D)
      return { logits: lmLogits(this.model, last as tf.Tensor2D), keys: out.keys!, values: out.values! }; // (B, D) x (D, V)
    });
    const logits = (res.logits.dataSync() as Float32Array).slice();
    res.logits.dispose();
    return { logits, keys: res.keys, values: res.values };
  }

  private sampleAll(): void {
    const tok = this.served.tokenizer;
    const maxPos = this.model.config.maxPositionEmbeddings;
    let sampled = 0;
    for (const s of this.active) {
      if (!s.logits) continue;
      const r = s.request;
      const { token, logProb } = sampleToken(s.logits, r.params, s.rng);
      s.logits = null;
      s.tokens.push(token);
      s.logProbs.push(logProb);
      s.nextPosition++;
      sampled++;
      if (r.stopIds.has(token)) {
        s.finish = FinishReason.STOP;
      } else if (r.stopStrings.length > 0 && tok) {
        const text = tok.decode(s.tokens, { skipSpecialTokens: true });
        const hit = findStopString(text, r.stopStrings);
        if (hit) {
          s.finish = FinishReason.STOP;
          s.text = text.slice(0, hit.index);
          s.stopString = hit.stop;
        }
      }
      if (s.finish === null && (s.tokens.length >= r.maxNewTokens || s.nextPosition >= maxPos)) s.finish = FinishReason.LENGTH;
    }
    if (sampled > 0) this.stats.recordStep(sampled);
  }

  private retireFinished(): void {
    if (!this.active.some((s) => s.finish !== null)) return;
    const keep: number[] = [];
    this.active.forEach((s, i) => {
      if (s.finish === null) {
        keep.push(i);
        return;
      }
      const r = s.request;
      if (!s.stopString && this.served.tokenizer) s.text = this.served.tokenizer.decode(s.tokens, { skipSpecialTokens: true });
      r.ready.push({
        promptIndex: s.promptIndex,
        sampleIndex: s.sampleIndex,
        promptTokenIds: s.promptIds,
        tokenIds: s.tokens,
        text: s.text,
        logprobs: r.logprobs ? s.logProbs : [],
        finishReason: s.finish,
        stopString: s.stopString,
        weightsVersion: s.weightsVersion,
      });
      r.remaining--;
      this.stats.recordCompletion(s.finish === FinishReason.STOP ? 'stop' : 'length');
      r.wake?.();
    });
    this.keepRows(keep);
  }

  /** Keeps only the given rows of the batch (and its cache), trimming key columns no remaining row uses. */
  private keepRows(keep: number[]): void {
    if (keep.length === this.active.length) return;
    this.active = keep.map((i) => this.active[i]);
    const old = this.cache;
    if (!old) return;
    if (keep.length === 0) {
      disposeCache(old);
      this.cache = null;
      return;
    }
    this.cache = selectRows(old, keep);
    disposeCache(old);
  }

  /** One token for every running sequence, attending to the cache. */
  private decode(): void {
    const cache = this.cache!;
    const B = this.active.length;
    const ids = new Int32Array(B);
    const positions = new Int32Array(B);
    this.active.forEach((s, b) => {
      ids[b] = s.tokens[s.tokens.length - 1];
      positions[b] = s.nextPosition - 1;
    });
    const mask = new Uint8Array(B).fill(1);
    const { logits, keys, values } = this.forwardLast({ ids, batch: B, length: 1, mask, positions }, cache);
    const K = cache.length;
    const keyMask = new Uint8Array(B * (K + 1));
    const keyPositions = new Int32Array(B * (K + 1));
    for (let b = 0; b < B; b++) {
      keyMask.set(cache.keyMask.subarray(b * K, (b + 1) * K), b * (K + 1));
      keyMask[b * (K + 1) + K] = 1;
      keyPositions.set(cache.keyPositions.subarray(b * K, (b + 1) * K), b * (K + 1));
      keyPositions[b * (K + 1) + K] = positions[b];
    }
    disposeCache(cache);
    this.cache = { keys, values, keyMask, keyPositions, length: K + 1 };
    const V = this.model.config.vocabSize;
    this.active.forEach((s, b) => (s.logits = logits.subarray(b * V, (b + 1) * V)));
  }

  private failAll(err: Error): void {
    for (const s of this.active) {
      s.request.error = err;
      s.request.cancelled = true;
      s.request.wake?.();
    }
    this.active = [];
    disposeCache(this.cache);
    this.cache = null;
  }

  // ---------------------------------------------------------------- ComputeLogProbs

  /** Log-probs under the weights being served; a weight swap waits until it is done. */
  async computeLogProbs(req: LogProbsRequest, limits: { maxBatchSequences?: number; maxBatchTokens?: number } = {}): Promise<BatchLogProbs & { weightsVersion: number }> {
    if (req.minWeightsVersion !== undefined && this.version < req.minWeightsVersion) {
      throw preconditionFailed(`loaded weights version ${this.version} is older than min_weights_version ${req.minWeightsVersion}`, 'min_weights_version');
    }
    this.readers++;
    const version = this.version;
    try {
      const out = await computeBatchLogProbs(this.model, req.sequences, {
        temperature: req.temperature,
        returnEntropies: req.returnEntropies,
        maxBatchSequences: limits.maxBatchSequences ?? this.options.maxBatchSequences,
        maxBatchTokens: limits.maxBatchTokens ?? this.options.maxBatchTokens,
      });
      return { ...out, weightsVersion: version };
    } finally {
      this.readers--;
    }
  }

  // ---------------------------------------------------------------- LoadWeights

  /** Early check of an upload's header (version, manifest) before its data arrives; throws ServingError. */
  checkUploadHeader(header: WeightsHeader): void {
    if (header.version === this.version && header.sha256 === this.sha256) return; // duplicate, acknowledged after the data
    if (header.version <= this.version) {
      throw preconditionFailed(`weights version ${header.version} is not newer than the loaded version ${this.version} (and its sha256 differs)`, 'header.version');
    }
    checkWeightsManifest(this.model, header);
  }

  /**
   * Applies a verified upload (bytes whose size and SHA-256 match the header):
   * the same version with the same checksum is a duplicate (nothing changes);
   * an older or equal version otherwise is failed-precondition; a bad payload
   * is invalid-argument and leaves the old weights serving. Uploads are
   * serialised; the swap happens between decoding steps with no sequence running.
   */
  loadWeights(header: WeightsHeader, bytes: Uint8Array): Promise<WeightsLoadResult> {
    const run = this.weightsLock.then(() => this.loadWeightsNow(header, bytes));
    this.weightsLock = run.catch(() => undefined);
    return run;
  }

  private async loadWeightsNow(header: WeightsHeader, bytes: Uint8Array): Promise<WeightsLoadResult> {
    if (header.version === this.version && header.sha256 === this.sha256) return { version: this.version, duplicate: true, tensorsLoaded: 0 };
    this.checkUploadHeader(header);
    const prepared = prepareWeights(this.model, header, bytes);
    await new Promise<void>((resolve, reject) => {
      this.swap = { prepared, header, resolve, reject };
      this.kick();
    });
    return { version: this.version, duplicate: false, tensorsLoaded: prepared.tensorCount };
  }

  private applySwap(swap: PendingSwap): void {
    this.swap = null;
    try {
      swap.prepared.apply(this.model);
      this.version = swap.header.version;
      this.sha256 = swap.header.sha256;
      this.format = swap.header.format;
      swap.resolve();
    } catch (e) {
      swap.prepared.discard();
      swap.reject(e as Error);
    }
  }

  /** Refuses new work, fails waiting requests and frees the cache; the model itself belongs to the caller. */
  close(): void {
    this.closed = true;
    for (const r of this.queue) {
      r.error = new ServingError('cancelled', '', 'the server is shutting down');
      r.cancelled = true;
      r.wake?.();
    }
    this.queue.length = 0;
    this.failAll(new ServingError('cancelled', '', 'the server is shutting down'));
    if (this.swap) {
      this.swap.prepared.discard();
      this.swap.reject(new ServingError('cancelled', '', 'the server is shutting down'));
      this.swap = null;
    }
  }
}
