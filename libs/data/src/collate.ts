import type { PreferenceExample, PromptExample, SftExample } from './tokenize-example';
import type { ChatMessage } from './tokenizer-like';

export type PaddingSide = 'left' | 'right';

/**
 * A batch of SFT rows, each array row-major [batchSize, seqLen]. Padding has
 * attentionMask 0, lossMask 0, segmentId 0, positionId 0. Packed rows hold
 * several examples: segmentIds number them 1, 2, ... within the row (attend
 * only where the query's and key's segment ids are equal and non-zero, which
 * with the causal mask is block-diagonal attention), positionIds restart at 0
 * for each, and lossMask is 0 on each example's first token so that no token
 * is trained to predict across an example boundary.
 */
export interface SftBatch {
  batchSize: number;
  seqLen: number;
  inputIds: Int32Array;
  attentionMask: Int32Array;
  lossMask: Int32Array;
  positionIds: Int32Array;
  segmentIds: Int32Array;
  /** Next-token targets: labels[t] = inputIds[t + 1] (padTokenId in the last column), as the losses of @posttrain/algorithms take them. */
  labels: Int32Array;
  /** labelMask[t] = lossMask[t + 1] (0 in the last column): the loss mask aligned with labels. */
  labelMask: Int32Array;
  /** Source line numbers of the examples in each row. */
  lines: number[][];
}

/**
 * Preference pairs as two right-padded batches of full sequences (prompt +
 * response) of one common length, so they can be stacked into [2B, T].
 * The loss masks are 1 on response tokens only (the prompt is masked out).
 */
export interface PreferenceBatch {
  batchSize: number;
  seqLen: number;
  chosenInputIds: Int32Array;
  chosenAttentionMask: Int32Array;
  chosenLossMask: Int32Array;
  /** Next-token targets and their mask (see {@link SftBatch.labels}). */
  chosenLabels: Int32Array;
  chosenLabelMask: Int32Array;
  rejectedInputIds: Int32Array;
  rejectedAttentionMask: Int32Array;
  rejectedLossMask: Int32Array;
  rejectedLabels: Int32Array;
  rejectedLabelMask: Int32Array;
  promptLengths: Int32Array;
  lines: number[];
}

/** Prompts for generation, left-padded by default so that every row ends at its last prompt token. */
export interface PromptBatch {
  batchSize: number;
  seqLen: number;
  paddingSide: PaddingSide;
  inputIds: Int32Array;
  attentionMask: Int32Array;
  /** 0, 1, ... over each row's real tokens (0 on padding), whatever the padding side. */
  positionIds: Int32Array;
  promptLengths: Int32Array;
  prompts: (string | ChatMessage[])[];
  groundTruths: (string | null)[];
  lines: number[];
}

function roundUp(n: number, multiple: number): number {
  if (!Number.isInteger(multiple) || multiple < 1) throw new RangeError(`padToMultipleOf: expected a positive integer, got ${multiple}`);
  return Math.ceil(n / multiple) * multiple;
}

function checkNotEmpty(count: number, what: string): void {
  if (count === 0) throw new RangeError(`${what}: expected at least one example, got none`);
}

/**
 * Pads sequences to one length into a row-major Int32Array [n, length].
 * Right padding puts the values first; left padding puts them last.
 */
export function padSequences(sequences: readonly (readonly number[])[], length: number, padValue: number, side: PaddingSide = 'right'): Int32Array {
  const out = new Int32Array(sequences.length * length).fill(padValue);
  sequences.forEach((seq, row) => {
    if (seq.length > length) throw new RangeError(`padSequences: row ${row} has ${seq.length} values, more than the length ${length}`);
    out.set(seq, row * length + (side === 'right' ? 0 : length - seq.length));
  });
  return out;
}

/**
 * Shifts [rows, seqLen] ids and their loss mask (1 where a token is a target)
 * to next-token form: labels[t] = inputIds[t + 1], labelMask[t] = lossMask[t + 1],
 * with padTokenId / 0 in each row's last column (nothing follows it).
 */
export function shiftLabels(inputIds: Int32Array, lossMask: Int32Array, seqLen: number, padTokenId: number): { labels: Int32Array; labelMask: Int32Array } {
  if (inputIds.length !== lossMask.length || inputIds.length % seqLen !== 0) {
    throw new RangeError(`shiftLabels: expected inputIds and lossMask of one length, a multiple of seqLen ${seqLen}; got ${inputIds.length} and ${lossMask.length}`);
  }
  const labels = new Int32Array(inputIds.length).fill(padTokenId);
  const labelMask = new Int32Array(inputIds.length);
  for (let row = 0; row < inputIds.length; row += seqLen) {
    labels.set(inputIds.subarray(row + 1, row + seqLen), row);
    labelMask.set(lossMask.subarray(row + 1, row + seqLen), row);
  }
  return { labels, labelMask };
}

/** Right-pads SFT examples, one per row, to the longest (rounded up to padToMultipleOf). */
export function collateSft(examples: readonly SftExample[], options: { padTokenId: number; padToMultipleOf?: number }): SftBatch {
  checkNotEmpty(examples.length, 'collateSft');
  const seqLen = roundUp(Math.max(...examples.map((e) => e.inputIds.length)), options.padToMultipleOf ?? 1);
  return packSft(
    examples.map((e) => [e]),
    seqLen,
    options.padTokenId,
  );
}

/**
 * Lays out rows of SFT examples (one or several examples per row) in a batch
 * of rows of exactly seqLen tokens; see {@link SftBatch} for the masks.
 */
export function packSft(rows: readonly (readonly SftExample[])[], seqLen: number, padTokenId: number): SftBatch {
  checkNotEmpty(rows.length, 'packSft');
  const n = rows.length * seqLen;
  const batch: Omit<SftBatch, 'labels' | 'labelMask'> = {
    batchSize: rows.length,
    seqLen,
    inputIds: new Int32Array(n).fill(padTokenId),
    attentionMask: new Int32Array(n),
    lossMask: new Int32Array(n),
    positionIds: new Int32Array(n),
    segmentIds: new Int32Array(n),
    lines: rows.map((row) => row.map((e) => e.line)),
  };
  rows.forEach((row, r) => {
    const used = row.reduce((sum, e) => sum + e.inputIds.length, 0);
    if (used > seqLen) throw new RangeError(`packSft: row ${r} holds ${used} tokens, more than seqLen ${seqLen}`);
    let at = r * seqLen;
    row.forEach((example, s) => {
      if (example.lossMask.length !== example.inputIds.length) {
        throw new RangeError(`packSft: example from line ${example.line} has ${example.inputIds.length} ids but ${example.lossMask.length} loss-mask entries`);
      }
      for (let i = 0; i < example.inputIds.length; i++, at++) {
        batch.inputIds[at] = example.inputIds[i];
        batch.attentionMask[at] = 1;
        batch.lossMask[at] = i === 0 ? 0 : example.lossMask[i];
        batch.positionIds[at] = i;
        batch.segmentIds[at] = s + 1;
      }
    });
  });
  return { ...batch, ...shiftLabels(batch.inputIds, batch.lossMask, seqLen, padTokenId) };
}

/** Right-pads preference pairs (prompt + response) to one common length. */
export function collatePreference(examples: readonly PreferenceExample[], options: { padTokenId: number; padToMultipleOf?: number }): PreferenceBatch {
  checkNotEmpty(examples.length, 'collatePreference');
  const longest = Math.max(...examples.map((e) => e.promptIds.length + Math.max(e.chosenIds.length, e.rejectedIds.length)));
  const seqLen = roundUp(longest, options.padToMultipleOf ?? 1);
  const side = (pick: (e: PreferenceExample) => number[]) => {
    const seqs = examples.map((e) => [...e.promptIds, ...pick(e)]);
    const ones = (len: number) => new Array<number>(len).fill(1);
    const inputIds = padSequences(seqs, seqLen, options.padTokenId);
    const lossMask = padSequences(examples.map((e) => [...new Array<number>(e.promptIds.length).fill(0), ...ones(pick(e).length)]), seqLen, 0);
    return {
      inputIds,
      attentionMask: padSequences(seqs.map((s) => ones(s.length)), seqLen, 0),
      lossMask,
      ...shiftLabels(inputIds, lossMask, seqLen, options.padTokenId),
    };
  };
  const chosen = side((e) => e.chosenIds);
  const rejected = side((e) => e.rejectedIds);
  return {
    batchSize: examples.length,
    seqLen,
    chosenInputIds: chosen.inputIds,
    chosenAttentionMask: chosen.attentionMask,
    chosenLossMask: chosen.lossMask,
    chosenLabels: chosen.labels,
    chosenLabelMask: chosen.labelMask,
    rejectedInputIds: rejected.inputIds,
    rejectedAttentionMask: rejected.attentionMask,
    rejectedLossMask: rejected.lossMask,
    rejectedLabels: rejected.labels,
    rejectedLabelMask: rejected.labelMask,
    promptLengths: Int32Array.from(examples, (e) => e.promptIds.length),
    lines: examples.map((e) => e.line),
  };
}

/** Pads prompts for generation (left by default: every row's last column is its last prompt token). */
export function collatePrompts(examples: readonly PromptExample[], options: { padTokenId: number; paddingSide?: PaddingSide }): PromptBatch {
  checkNotEmpty(examples.length, 'collatePrompts');
  const side = options.paddingSide ?? 'left';
  const seqLen = Math.max(...examples.map((e) => e.promptIds.length));
  const seqs = examples.map((e) => e.promptIds);
  return {
    batchSize: examples.length,
    seqLen,
    paddingSide: side,
    inputIds: padSequences(seqs, seqLen, options.padTokenId, side),
    attentionMask: padSequences(seqs.map((s) => s.map(() => 1)), seqLen, 0, side),
    positionIds: padSequences(seqs.map((s) => s.map((_, i) => i)), seqLen, 0, side),
    promptLengths: Int32Array.from(seqs, (s) => s.length),
    prompts: examples.map((e) => e.prompt),
    groundTruths: examples.map((e) => e.groundTruth),
    lines: examples.map((e) => e.line),
  };
}
