import { Rng } from '@posttrain/random';
import type { BatchBuilder } from './batch-builder';
import type { DataLine } from './data-record';
import type { RecordSource } from './indexed-data-file';
import type { TokenizeResult } from './tokenize-example';

/**
 * Where a data loader is: the next example is number `index` (0-based, in
 * the shuffled order) of epoch `epoch`, whose order follows from `seed`.
 * Plain JSON, saved in checkpoints; `datasetSize` guards against resuming on
 * other data.
 */
export interface DataPosition {
  seed: number;
  epoch: number;
  index: number;
  datasetSize: number;
}

/** Validates a saved {@link DataPosition} (e.g. read back from a checkpoint). */
export function validateDataPosition(value: unknown, where = 'data position'): DataPosition {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${where}: expected an object {seed, epoch, index, datasetSize}, got ${JSON.stringify(value)}`);
  }
  const record = value as Record<string, unknown>;
  const keys = ['seed', 'epoch', 'index', 'datasetSize'] as const;
  for (const key of Object.keys(record)) {
    if (!(keys as readonly string[]).includes(key)) throw new Error(`${where}.${key}: unknown key (known keys: ${keys.join(', ')})`);
  }
  for (const key of keys) {
    const v = record[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new Error(`${where}.${key}: expected a non-negative integer, got ${JSON.stringify(v)}`);
    }
  }
  const position = { seed: record.seed as number, epoch: record.epoch as number, index: record.index as number, datasetSize: record.datasetSize as number };
  if (position.index > position.datasetSize) {
    throw new Error(`${where}.index: expected at most datasetSize ${position.datasetSize}, got ${position.index}`);
  }
  return position;
}

/**
 * The order of the examples in one epoch: a Fisher-Yates permutation drawn
 * from a stream forked off `seed` for this epoch, so any epoch's order can be
 * recomputed without replaying the ones before it.
 */
export function epochPermutation(seed: number, epoch: number, size: number, shuffle = true): number[] {
  const order = Array.from({ length: size }, (_, i) => i);
  if (!shuffle) return order;
  return new Rng(seed).fork(`data-epoch-${epoch}`).shuffle(order);
}

export interface DataLoaderOptions<E, B> {
  source: RecordSource;
  /** Turns a record into an example, or says why it is dropped. */
  encode: (line: DataLine) => TokenizeResult<E>;
  /** A fresh, empty batch builder. */
  createBatch: () => BatchBuilder<E, B>;
  seed: number;
  shuffle: boolean;
  /** Discard the incomplete last batch of each epoch (counted in stats). */
  dropLast: boolean;
  /** Resume here (from {@link DataLoader.position}); default: epoch 0, index 0. */
  position?: DataPosition;
}

/** What the loader has skipped or changed; nothing is dropped without being counted here. */
export interface DataLoaderStats {
  batches: number;
  examples: number;
  truncated: number;
  dropped: number;
  /** The first 1000 drops with their reasons. */
  droppedLines: { epoch: number; line: number; reason: string }[];
  /** Examples discarded with the incomplete last batch of an epoch (dropLast). */
  droppedAtEpochEnd: number;
}

const MAX_DROPS_LISTED = 1000;

/**
 * Deterministic, resumable batches: shuffles per epoch from a seed, encodes
 * each record, fills batches in that order, and runs epoch after epoch. The
 * position after any batch, restored into a new loader, yields exactly the
 * batches that would have followed.
 *
 *     const loader = new DataLoader({ source, encode, createBatch, seed: 1, shuffle: true, dropLast: false });
 *     const batch = await loader.next();
 *     checkpoint.data = loader.position();
 */
export class DataLoader<E, B> {
  readonly stats: DataLoaderStats = { batches: 0, examples: 0, truncated: 0, dropped: 0, droppedLines: [], droppedAtEpochEnd: 0 };
  private epoch = 0;
  private index = 0;
  private order: number[];
  private builder: BatchBuilder<E, B>;
  /** An encoded example that did not fit the last batch: the next batch starts with it. */
  private pending: TokenizeResult<E> | null = null;
  private pendingLine = -1;
  private acceptedThisEpoch = false;

  constructor(private readonly options: DataLoaderOptions<E, B>) {
    const size = options.source.length;
    if (size === 0) throw new Error('data loader: the dataset has no valid records');
    if (options.position !== undefined) {
      const p = validateDataPosition(options.position);
      if (p.seed !== options.seed) throw new Error(`data position.seed: expected the loader's seed ${options.seed}, got ${p.seed}`);
      if (p.datasetSize !== size) {
        throw new Error(`data position.datasetSize: expected the dataset's ${size} records, got ${p.datasetSize} (is this the same data?)`);
      }
      this.epoch = p.epoch;
      this.index = p.index;
      this.acceptedThisEpoch = p.index > 0;
    }
    this.order = epochPermutation(options.seed, this.epoch, size, options.shuffle);
    this.builder = options.createBatch();
  }

  /** The position to save: a loader restored from it continues with the batch that this one would return next. */
  position(): DataPosition {
    return { seed: this.options.seed, epoch: this.epoch, index: this.index, datasetSize: this.options.source.length };
  }

  /** The epoch the next example comes from. */
  get currentEpoch(): number {
    return this.epoch;
  }

  /** The next batch; epochs follow one another without end. */
  async next(): Promise<B> {
    for (;;) {
      const batch = await this.step();
      if (batch !== null) return batch;
    }
  }

  /** The remaining batches of the current epoch (the last one may be smaller, unless dropLast); afterwards the loader is at the start of the next epoch. */
  async *epochBatches(): AsyncGenerator<B> {
    const epoch = this.epoch;
    while (this.epoch === epoch) {
      const batch = await this.step();
      if (batch === null) return;
      yield batch;
    }
  }

  /** Fills and returns the next batch of this epoch, or moves to the next epoch and returns null when this one has nothing left to give. */
  private async step(): Promise<B | null> {
    const size = this.options.source.length;
    for (;;) {
      if (this.index >= size) {
        const leftover = this.builder.count;
        if (leftover > 0 && !this.options.dropLast) {
          this.startEpoch(this.epoch + 1);
          return this.emit();
        }
        if (leftover > 0) {
          this.stats.droppedAtEpochEnd += leftover;
          this.builder = this.options.createBatch();
        }
        if (!this.acceptedThisEpoch) {
          throw new Error(`data loader: epoch ${this.epoch} used none of the ${size} records (see stats.droppedLines for why)`);
        }
        this.startEpoch(this.epoch + 1);
        return null;
      }
      let encoded = this.pending;
      let line = this.pendingLine;
      this.pending = null;
      if (encoded === null) {
        const data = await this.options.source.get(this.order[this.index]);
        line = data.line;
        encoded = this.options.encode(data);
      }
      if (!encoded.ok) {
        this.stats.dropped++;
        if (this.stats.droppedLines.length < MAX_DROPS_LISTED) this.stats.droppedLines.push({ epoch: this.epoch, line, reason: encoded.reason });
        this.index++;
        continue;
      }
      if (!this.builder.tryAdd(encoded.example)) {
        if (this.builder.count === 0) throw new Error(`data loader: an example does not fit in an empty batch (line ${line})`);
        this.pending = encoded;
        this.pendingLine = line;
        return this.emit();
      }
      this.index++;
      this.acceptedThisEpoch = true;
      this.stats.examples++;
      if (encoded.truncated) this.stats.truncated++;
      if (this.builder.isFull()) return this.emit();
    }
  }

  private emit(): B {
    this.stats.batches++;
    return this.builder.build();
  }

  private startEpoch(epoch: number): void {
    this.epoch = epoch;
    this.index = 0;
    this.acceptedThisEpoch = false;
    this.order = epochPermutation(this.options.seed, epoch, this.options.source.length, this.options.shuffle);
  }
}
