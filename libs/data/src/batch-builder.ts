import { packSft, type SftBatch } from './collate';
import type { SftExample } from './tokenize-example';

/** Accumulates examples into one batch; the {@link DataLoader} fills it in data order. */
export interface BatchBuilder<E, B> {
  /** Adds the example if it fits; false, changing nothing, if this batch has no room for it. */
  tryAdd(example: E): boolean;
  /** Number of examples added since the last build. */
  readonly count: number;
  /** True when nothing more can be added. */
  isFull(): boolean;
  /** Builds the batch from the examples added and empties the builder. */
  build(): B;
}

/** A batch of a fixed number of examples, collated by a function (collateSft, collatePreference, collatePrompts). */
export class FixedSizeBatchBuilder<E, B> implements BatchBuilder<E, B> {
  private examples: E[] = [];

  constructor(
    private readonly batchSize: number,
    private readonly collate: (examples: E[]) => B,
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize: expected a positive integer, got ${batchSize}`);
  }

  get count(): number {
    return this.examples.length;
  }

  tryAdd(example: E): boolean {
    if (this.isFull()) return false;
    this.examples.push(example);
    return true;
  }

  isFull(): boolean {
    return this.examples.length >= this.batchSize;
  }

  build(): B {
    const examples = this.examples;
    this.examples = [];
    return this.collate(examples);
  }
}

/**
 * Packs SFT examples into `rows` rows of `seqLen` tokens, in data order: an
 * example goes into the current row if it fits, else starts the next row; when
 * the last row has no room, the batch is done and the example waits for the
 * next batch (no reordering, so a saved data position resumes exactly).
 */
export class PackedSftBatchBuilder implements BatchBuilder<SftExample, SftBatch> {
  private rowsSoFar: SftExample[][] = [];
  private lastRowLength = 0;
  private added = 0;

  constructor(
    private readonly rows: number,
    private readonly seqLen: number,
    private readonly padTokenId: number,
  ) {
    if (!Number.isInteger(rows) || rows < 1) throw new RangeError(`rows: expected a positive integer, got ${rows}`);
    if (!Number.isInteger(seqLen) || seqLen < 1) throw new RangeError(`seqLen: expected a positive integer, got ${seqLen}`);
  }

  get count(): number {
    return this.added;
  }

  tryAdd(example: SftExample): boolean {
    const length = example.inputIds.length;
    if (length > this.seqLen) {
      throw new RangeError(`packing: the example from line ${example.line} has ${length} tokens, more than the row length ${this.seqLen}; truncate or drop it first`);
    }
    if (this.rowsSoFar.length > 0 && this.lastRowLength + length <= this.seqLen) {
      this.rowsSoFar[this.rowsSoFar.length - 1].push(example);
      this.lastRowLength += length;
    } else if (this.rowsSoFar.length < this.rows) {
      this.rowsSoFar.push([example]);
      this.lastRowLength = length;
    } else {
      return false;
    }
    this.added++;
    return true;
  }

  isFull(): boolean {
    return this.rowsSoFar.length === this.rows && this.lastRowLength === this.seqLen;
  }

  build(): SftBatch {
    const batch = packSft(this.rowsSoFar, this.seqLen, this.padTokenId);
    this.rowsSoFar = [];
    this.lastRowLength = 0;
    this.added = 0;
    return batch;
  }
}
