/**
 * The scheduler of the generation engine: continuous batching over a KV cache.
 *
 * Admitted requests enter a bounded queue. A loop, one decoding step at a
 * time, (1) drops the sequences of cancelled requests, (2) applies a pending
 * weight swap once no sequence runs, else admits queued sequences while the
 * batch stays within `maxBatchSequences` sequences and `maxBatchTokens`
 * reserved tokens (prompt + max_new_tokens per sequence), prefilling their
 * prompts in one forward pass whose keys/values are merged into the running
 * cache, (3) samples one token for every running sequence from its own logits
 * with its own random stream, (4) retires finished sequences, and (5) runs one
 * shared forward pass for the next token of all remaining sequences (the
 * decoding step of @posttrain/model's decode-step.ts). Between steps it yields
 * to the event loop, so RPCs are read and answered while a batch runs.
 *
 * Reproducibility: sequence (prompt p, sample s) of a request with seed S
 * draws from Rng(S).fork(`p/s`), so its tokens depend only on its own logits,
 * never on what else is batched with it. Rows of different lengths are
 * left-padded in the cache and padded keys are masked with exact zeros, so a
 * row's logits match its solo computation up to float rounding.
 */
import { appendCacheColumn, lastPositionLogits, leftPadPrompts, sampleToken, type LlamaModel, type SamplingParams } from '@posttrain/model';
import { Rng } from '@posttrain/random';
import { disposeCache, mergeCaches, selectRows, type BatchCache } from './batch-cache';
import type { EngineStats } from './engine-stats';
import { findStopString } from './find-stop-string';
import type { CompletionFinish, GeneratedCompletion } from './generation-request';
import type { AdmittedRequest } from './request-admission';
import type { ServedModel } from './served-model';
import { ServingError } from './serving-error';

export interface SchedulerLimits {
  /** Most sequences decoded together. */
  maxBatchSequences: number;
  /** Most tokens (prompt + max_new_tokens, summed over running sequences) reserved at once; a longer single sequence runs alone. */
  maxBatchTokens: number;
  /** Most requests waiting for a batch slot; one more is refused (resource-exhausted). */
  maxQueueDepth: number;
}

/** What the scheduler needs of the weight swaps: the version being served, and the swap it applies between steps. */
export interface SwapTurn {
  readonly version: number;
  readonly pending: boolean;
  applyIfIdle(runningSequences: number): boolean;
}

interface RequestState {
  sampling: SamplingParams;
  maxNewTokens: number;
  stopTokenIds: Set<number>;
  stopStrings: string[];
  logprobs: boolean;
  /** Sequences not yet admitted to the batch. */
  waiting: SequenceState[];
  remaining: number;
  ready: GeneratedCompletion[];
  wake: (() => void) | null;
  error: Error | null;
  cancelled: boolean;
}

interface SequenceState {
  request: RequestState;
  promptIndex: number;
  sampleIndex: number;
  promptIds: readonly number[];
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
  finish: CompletionFinish | null;
}

export class BatchScheduler {
  private readonly model: LlamaModel;
  private readonly queue: RequestState[] = [];
  private active: SequenceState[] = [];
  private cache: BatchCache | null = null;
  private loopRunning = false;

  constructor(
    private readonly served: ServedModel,
    private readonly limits: SchedulerLimits,
    private readonly stats: EngineStats,
    private readonly swaps: SwapTurn,
  ) {
    this.model = served.model;
  }

  /** Requests waiting for a batch slot. */
  get queueDepth(): number {
    return this.queue.length;
  }

  /** Sequences in the running batch. */
  get runningSequences(): number {
    return this.active.length;
  }

  /**
   * Queues an admitted request; returns the stream of its completions (each
   * yield: the completions finished since the previous one). Throws
   * resource-exhausted synchronously when the queue is full. Aborting
   * `signal` drops the request's sequences at the next step.
   */
  enqueue(admitted: AdmittedRequest, signal?: AbortSignal): AsyncIterable<GeneratedCompletion[]> {
    if (this.queue.length >= this.limits.maxQueueDepth) {
      throw new ServingError('resource-exhausted', '', `the queue is full (${this.queue.length} requests waiting, max_queue_depth ${this.limits.maxQueueDepth}); retry later or on another replica`);
    }
    const root = new Rng(admitted.seed);
    const state: RequestState = {
      sampling: admitted.sampling,
      maxNewTokens: admitted.maxNewTokens,
      stopTokenIds: admitted.stopTokenIds,
      stopStrings: admitted.stopStrings,
      logprobs: admitted.logprobs,
      waiting: [],
      remaining: admitted.prompts.length * admitted.samplesPerPrompt,
      ready: [],
      wake: null,
      error: null,
      cancelled: false,
    };
    admitted.prompts.forEach((promptIds, promptIndex) => {
      for (let sampleIndex = 0; sampleIndex < admitted.samplesPerPrompt; sampleIndex++) {
        state.waiting.push({
          request: state, promptIndex, sampleIndex, promptIds, tokens: [], logProbs: [], rng: root.fork(`${promptIndex}/${sampleIndex}`),
          nextPosition: promptIds.length, logits: null, weightsVersion: 0, text: '', stopString: '', finish: null,
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

  /** Starts the loop unless it runs already (a new request, or a swap waiting to be applied). */
  kick(): void {
    if (this.loopRunning) return;
    this.loopRunning = true;
    void this.loop();
  }

  /** Fails every queued and running request with `error` and frees the cache. */
  close(error: ServingError): void {
    for (const request of this.queue) {
      request.error = error;
      request.cancelled = true;
      request.wake?.();
    }
    this.queue.length = 0;
    this.failAll(error);
  }

  private async *results(state: RequestState, cleanup: () => void): AsyncGenerator<GeneratedCompletion[]> {
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

  private async loop(): Promise<void> {
    try {
      while (this.active.length > 0 || this.queue.length > 0 || this.swaps.pending) {
        const progressed = this.step();
        // Yield to I/O between steps; when idle (a swap waiting on readers), sleep a little instead of spinning.
        await new Promise<void>((resolve) => (progressed ? setImmediate(resolve) : setTimeout(resolve, 2)));
      }
    } finally {
      this.loopRunning = false;
    }
  }

  /** One scheduler step; returns whether it did any work. */
  private step(): boolean {
    this.dropCancelled();
    if (this.swaps.applyIfIdle(this.active.length)) return true;
    const admitted = this.swaps.pending ? [] : this.admit();
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
    for (let index = this.queue.length - 1; index >= 0; index--) {
      if (this.queue[index].cancelled) this.queue.splice(index, 1);
    }
    if (this.active.some((seq) => seq.request.cancelled)) this.keepRows(this.active.map((seq, row) => (seq.request.cancelled ? -1 : row)).filter((row) => row >= 0));
  }

  private reserved(seq: SequenceState): number {
    return seq.promptIds.length + seq.request.maxNewTokens;
  }

  /** Moves queued sequences into the batch, oldest request first, within the budgets. */
  private admit(): SequenceState[] {
    const admitted: SequenceState[] = [];
    let reserved = this.active.reduce((sum, seq) => sum + this.reserved(seq), 0);
    while (this.queue.length > 0) {
      const request = this.queue[0];
      const next = request.waiting[0];
      if (this.active.length + admitted.length >= this.limits.maxBatchSequences) break;
      const need = this.reserved(next);
      const batchEmpty = this.active.length + admitted.length === 0;
      if (!batchEmpty && reserved + need > this.limits.maxBatchTokens) break;
      request.waiting.shift();
      next.weightsVersion = this.swaps.version;
      admitted.push(next);
      reserved += need;
      if (request.waiting.length === 0) this.queue.shift();
    }
    return admitted;
  }

  /** Runs the prompts of newly admitted sequences (left-padded) and merges their keys/values into the batch cache. */
  private prefill(sequences: SequenceState[]): void {
    const prompts = leftPadPrompts(sequences.map((seq) => seq.promptIds), 0);
    const { logits, keys, values } = lastPositionLogits(this.model, prompts, undefined, true);
    this.setLogits(sequences, logits);
    const fresh: BatchCache = { keys: keys!, values: values!, keyMask: prompts.mask, keyPositions: prompts.positions, length: prompts.length };
    if (!this.cache) {
      this.cache = fresh;
    } else {
      const merged = mergeCaches(this.cache, this.active.length, fresh, sequences.length);
      disposeCache(this.cache);
      disposeCache(fresh);
      this.cache = merged;
    }
    this.active.push(...sequences);
  }

  /** Hands row b of the batch's next-token logits [B * V] to sequence b. */
  private setLogits(sequences: SequenceState[], logits: Float32Array): void {
    const vocabSize = this.model.config.vocabSize;
    sequences.forEach((seq, row) => (seq.logits = logits.subarray(row * vocabSize, (row + 1) * vocabSize)));
  }

  private sampleAll(): void {
    const tokenizer = this.served.tokenizer;
    const maxPositions = this.model.config.maxPositionEmbeddings;
    let sampled = 0;
    for (const seq of this.active) {
      if (!seq.logits) continue;
      const request = seq.request;
      const { token, logProb } = sampleToken(seq.logits, request.sampling, seq.rng);
      seq.logits = null;
      seq.tokens.push(token);
      seq.logProbs.push(logProb);
      seq.nextPosition++;
      sampled++;
      if (request.stopTokenIds.has(token)) {
        seq.finish = 'stop';
      } else if (request.stopStrings.length > 0 && tokenizer) {
        const text = tokenizer.decode(seq.tokens, { skipSpecialTokens: true });
        const hit = findStopString(text, request.stopStrings);
        if (hit) {
          seq.finish = 'stop';
          seq.text = text.slice(0, hit.index);
          seq.stopString = hit.stop;
        }
      }
      if (seq.finish === null && (seq.tokens.length >= request.maxNewTokens || seq.nextPosition >= maxPositions)) seq.finish = 'length';
    }
    if (sampled > 0) this.stats.recordStep(sampled);
  }

  private retireFinished(): void {
    if (!this.active.some((seq) => seq.finish !== null)) return;
    const keep: number[] = [];
    this.active.forEach((seq, row) => {
      if (seq.finish === null) {
        keep.push(row);
        return;
      }
      const request = seq.request;
      if (!seq.stopString && this.served.tokenizer) seq.text = this.served.tokenizer.decode(seq.tokens, { skipSpecialTokens: true });
      request.ready.push({
        promptIndex: seq.promptIndex,
        sampleIndex: seq.sampleIndex,
        promptTokenIds: [...seq.promptIds],
        tokenIds: seq.tokens,
        text: seq.text,
        logprobs: request.logprobs ? seq.logProbs : [],
        finishReason: seq.finish,
        stopString: seq.stopString,
        weightsVersion: seq.weightsVersion,
      });
      request.remaining--;
      this.stats.recordCompletion(seq.finish);
      request.wake?.();
    });
    this.keepRows(keep);
  }

  /** Keeps only the given rows of the batch (and its cache), trimming key columns no remaining row uses. */
  private keepRows(keep: number[]): void {
    if (keep.length === this.active.length) return;
    this.active = keep.map((row) => this.active[row]);
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
    const rows = this.active.length;
    const ids = new Int32Array(rows);
    const positions = new Int32Array(rows);
    this.active.forEach((seq, row) => {
      ids[row] = seq.tokens[seq.tokens.length - 1];
      positions[row] = seq.nextPosition - 1;
    });
    const mask = new Uint8Array(rows).fill(1);
    const step = lastPositionLogits(this.model, { ids, batch: rows, length: 1, mask, positions }, cache, true);
    const grown = appendCacheColumn(cache, { keys: step.keys!, values: step.values! }, mask, positions);
    disposeCache(cache);
    this.cache = grown;
    this.setLogits(this.active, step.logits);
  }

  private failAll(error: Error): void {
    for (const seq of this.active) {
      seq.request.error = error;
      seq.request.cancelled = true;
      seq.request.wake?.();
    }
    this.active = [];
    disposeCache(this.cache);
    this.cache = null;
  }
}
