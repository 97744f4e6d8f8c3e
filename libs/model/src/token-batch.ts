/**
 * A batch of token sequences as callers hand it over: rows of equal length,
 * with an attention mask (1 = real token, 0 = padding; left or right padding).
 */
import type { ForwardTokens } from './transformer-forward';
import { positionsFromMask } from './transformer-forward';

export interface TokenBatch {
  /** [B][T] token ids; rows padded to the same length. */
  inputIds: number[][];
  /** [B][T] of 0/1; all ones when omitted. */
  attentionMask?: number[][];
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
  return { ids, batch: B, length: T, mask, positions: positionsFromMask(mask, B, T) };
}

/** Right-pads sequences of different lengths into a TokenBatch. */
export function padBatch(sequences: number[][], padId = 0): TokenBatch {
  const T = Math.max(...sequences.map((s) => s.length));
  return {
    inputIds: sequences.map((s) => [...s, ...new Array<number>(T - s.length).fill(padId)]),
    attentionMask: sequences.map((s) => [...new Array<number>(s.length).fill(1), ...new Array<number>(T - s.length).fill(0)]),
  };
}
