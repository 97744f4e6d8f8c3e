/**
 * A batch of token sequences as callers hand it over: rows of equal length,
 * with an attention mask (1 = real token, 0 = padding; left or right padding),
 * and for packed rows the segment (example) of each token.
 */
import type { ForwardTokens } from './transformer-forward';
import { positionsFromMask, positionsFromSegments } from './transformer-forward';

export interface TokenBatch {
  /** [B][T] token ids; rows padded to the same length. */
  inputIds: number[][];
  /** [B][T] of 0/1; all ones when omitted. */
  attentionMask?: number[][];
  /**
   * [B][T] of non-negative integers, optional: packed rows (several examples in one row, as
   * @posttrain/data's packSft lays them out: 1, 2, ... per example, 0 on padding). Tokens attend only
   * within their own segment, rotary positions restart at 0 for each segment, and a segment's first
   * token gets no log-prob (nothing of its own example precedes it).
   */
  segmentIds?: number[][];
}

/** Validates a batch and lays it out for the forward pass (rotary positions count real tokens only). */
export function toForwardTokens(batch: TokenBatch, vocabSize: number, field = 'inputIds'): ForwardTokens {
  const rows = batch.inputIds;
  if (!Array.isArray(rows) || rows.length === 0) throw new Error(`${field}: expected a non-empty array of token rows, got ${JSON.stringify(rows)}`);
  const T = rows[0]?.length;
  if (!Array.isArray(rows[0]) || T === 0) throw new Error(`${field}[0]: expected a non-empty array of token ids`);
  const B = rows.length;
  const ids = new Int32Array(B * T);
  const mask = new Uint8Array(B * T);
  const masks = batch.attentionMask;
  if (masks !== undefined && (!Array.isArray(masks) || masks.length !== B)) {
    throw new Error(`attentionMask: expected ${B} rows (one per ${field} row), got ${Array.isArray(masks) ? masks.length : JSON.stringify(masks)}`);
  }
  for (let b = 0; b < B; b++) {
    const row = rows[b];
    if (!Array.isArray(row) || row.length !== T) {
      throw new Error(`${field}[${b}]: expected ${T} token ids (rows must be padded to equal length), got ${Array.isArray(row) ? row.length : JSON.stringify(row)}`);
    }
    const m = masks?.[b];
    if (masks && (!Array.isArray(m) || m.length !== T)) throw new Error(`attentionMask[${b}]: expected ${T} entries of 0/1`);
    for (let t = 0; t < T; t++) {
      const id = row[t];
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new Error(`${field}[${b}][${t}]: token id ${JSON.stringify(id)} is not an integer in [0, ${vocabSize})`);
      const mv = m ? m[t] : 1;
      if (mv !== 0 && mv !== 1) throw new Error(`attentionMask[${b}][${t}]: ${JSON.stringify(mv)} is not 0 or 1`);
      ids[b * T + t] = id;
      mask[b * T + t] = mv;
    }
  }
  const segs = batch.segmentIds;
  if (segs === undefined) return { ids, batch: B, length: T, mask, positions: positionsFromMask(mask, B, T) };
  if (!Array.isArray(segs) || segs.length !== B) {
    throw new Error(`segmentIds: expected ${B} rows (one per ${field} row), got ${Array.isArray(segs) ? segs.length : JSON.stringify(segs)}`);
  }
  const segmentIds = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const s = segs[b];
    if (!Array.isArray(s) || s.length !== T) throw new Error(`segmentIds[${b}]: expected ${T} segment ids, got ${Array.isArray(s) ? s.length : JSON.stringify(s)}`);
    for (let t = 0; t < T; t++) {
      const v = s[t];
      if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new Error(`segmentIds[${b}][${t}]: ${JSON.stringify(v)} is not a non-negative integer`);
      segmentIds[b * T + t] = v;
    }
  }
  return { ids, batch: B, length: T, mask, positions: positionsFromSegments(mask, segmentIds, B, T), segmentIds };
}

/** Right-pads sequences of different lengths into a TokenBatch. */
export function padBatch(sequences: number[][], padId = 0): TokenBatch {
  const T = Math.max(...sequences.map((s) => s.length));
  return {
    inputIds: sequences.map((s) => [...s, ...new Array<number>(T - s.length).fill(padId)]),
    attentionMask: sequences.map((s) => [...new Array<number>(s.length).fill(1), ...new Array<number>(T - s.length).fill(0)]),
  };
}
