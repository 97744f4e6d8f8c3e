import type { DataLine } from './data-record';
import { tokenizePreference, tokenizePrompt, tokenizeSft, type SftTokenizeOptions } from './tokenize-example';
import type { TokenizerLike } from './tokenizer-like';

/** Consecutive tokens that are all trained on, or all not. */
export interface TokenRun {
  ids: number[];
  trained: boolean;
}

/** One sequence of a record as training sees it (a preference record has two: chosen and rejected). */
export interface PreviewSequence {
  /** 'sft', 'chosen', 'rejected' or 'prompt' (prompt-only data: nothing is trained, generation starts after it). */
  label: 'sft' | 'chosen' | 'rejected' | 'prompt';
  runs: TokenRun[];
  tokens: number;
  trained: number;
}

export type RecordPreview = { ok: true; line: number; sequences: PreviewSequence[] } | { ok: false; line: number; reason: string };

/**
 * What training would see of a record: its tokens, split into runs of trained
 * and untrained tokens, through the same tokenization as the trainers (SFT
 * masks for language-modelling and prompt-completion records; the responses
 * of preference pairs, as DPO and reward modelling score them; the prompt of
 * prompt-only records, untrained, as GRPO/PPO generate after it).
 */
export function previewExample(data: DataLine, tokenizer: TokenizerLike, options: SftTokenizeOptions): RecordPreview {
  const { record } = data;
  const length = { maxLength: options.maxLength, truncation: options.truncation };
  if (record.format === 'language-modeling' || record.format === 'prompt-completion') {
    const r = tokenizeSft(data, tokenizer, options);
    if (!r.ok) return { ok: false, line: data.line, reason: r.reason };
    return { ok: true, line: data.line, sequences: [sequence('sft', r.example.inputIds, r.example.lossMask)] };
  }
  if (record.format === 'preference' || record.format === 'implicit-preference') {
    const r = tokenizePreference(data, tokenizer, length);
    if (!r.ok) return { ok: false, line: data.line, reason: r.reason };
    const { promptIds, chosenIds, rejectedIds } = r.example;
    const mask = (response: number[]) => [...promptIds.map(() => 0), ...response.map(() => 1)];
    return {
      ok: true,
      line: data.line,
      sequences: [sequence('chosen', [...promptIds, ...chosenIds], mask(chosenIds)), sequence('rejected', [...promptIds, ...rejectedIds], mask(rejectedIds))],
    };
  }
  const r = tokenizePrompt(data, tokenizer, length);
  if (!r.ok) return { ok: false, line: data.line, reason: r.reason };
  return { ok: true, line: data.line, sequences: [sequence('prompt', r.example.promptIds, r.example.promptIds.map(() => 0))] };
}

function sequence(label: PreviewSequence['label'], ids: number[], mask: number[]): PreviewSequence {
  const runs: TokenRun[] = [];
  ids.forEach((id, i) => {
    const trained = mask[i] === 1;
    const last = runs[runs.length - 1];
    if (last !== undefined && last.trained === trained) last.ids.push(id);
    else runs.push({ ids: [id], trained });
  });
  return { label, runs, tokens: ids.length, trained: mask.filter((m) => m === 1).length };
}
