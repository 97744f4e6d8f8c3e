/**
 * Pass-rate filtering of RL prompts: keep the prompts the start model answers
 * wrong when decoding greedily. A group of completions of a prompt the model
 * already gets right is all correct, so its group-relative advantages are
 * zero and it teaches nothing; the errors left after SFT are a few percent
 * of the prompts, so on unfiltered prompts a short GRPO run sees only a
 * handful of them. Reasoning-RL recipes filter their prompt sets the same
 * way, by the pass rate of the model they start from.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CORRECT_COMPONENT } from '@posttrain/task';
import type { CompleteFn, EvaluateAnswersOptions } from './evaluate-answers';
import { evaluateAnswers } from './evaluate-answers';
import type { AnswerItem } from './read-eval-data';
import { readEvalData } from './read-eval-data';

export interface FailedPromptSelection {
  /** 1-based line numbers of the kept prompts, in file order. */
  lines: number[];
  /** Prompts completed before enough failures were found (or all of them). */
  scanned: number;
}

export interface SelectFailedPromptsOptions {
  /** Stop once this many failed prompts are found; default: scan every prompt. */
  want?: number;
  /** Prompts per call of `complete`; default 32. */
  batchSize?: number;
  /** Reward components that define "correct"; default the task's. */
  components?: EvaluateAnswersOptions['components'];
  /** After each batch: prompts scanned, failures found. */
  onProgress?: (scanned: number, failed: number) => void;
}

/**
 * Completes `items` in order, a batch at a time, and returns the prompts
 * whose reply scores 0 on the `correct` component, stopping as soon as
 * `want` of them are found. The replies are scored by evaluateAnswers, the
 * code the RL reward goes through, so "failed" here is "reward 0" there.
 */
export async function selectFailedPrompts(items: readonly AnswerItem[], complete: CompleteFn, options: SelectFailedPromptsOptions = {}): Promise<FailedPromptSelection> {
  const want = options.want ?? Number.POSITIVE_INFINITY;
  if (want !== Number.POSITIVE_INFINITY && (!Number.isInteger(want) || want < 1)) throw new Error(`want: got ${JSON.stringify(options.want)}, expected a positive integer`);
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize: got ${JSON.stringify(batchSize)}, expected a positive integer`);
  const lines: number[] = [];
  let scanned = 0;
  for (let s = 0; s < items.length && lines.length < want; s += batchSize) {
    const chunk = items.slice(s, s + batchSize);
    const scored = await evaluateAnswers(chunk, complete, { batchSize, ...(options.components ? { components: options.components } : {}) });
    for (const sample of scored.samples) {
      if (lines.length < want && !((sample.components[CORRECT_COMPONENT] ?? 0) > 0)) lines.push(sample.line);
    }
    scanned += chunk.length;
    options.onProgress?.(scanned, lines.length);
  }
  return { lines, scanned };
}

/** Writes the given 1-based lines of the JSONL file `from` to `to`, byte for byte and in file order. */
export async function writeSelectedLines(from: string, lines: readonly number[], to: string): Promise<void> {
  const text = (await readFile(from, 'utf8')).split('\n');
  const out = [...lines].sort((a, b) => a - b).map((n) => {
    if (!Number.isInteger(n) || n < 1 || n > text.length || text[n - 1].trim() === '') throw new Error(`${from}: line ${n} is not a record of the file`);
    return text[n - 1];
  });
  // The directory may not exist yet: the stage that would create it can run after this one.
  await mkdir(dirname(to), { recursive: true });
  await writeFile(to, out.join('\n') + '\n');
}

/** What writeFailedPrompts found: the selection, the prompts in the file, and whether `to` was written. */
export interface FailedPromptsFile extends FailedPromptSelection {
  /** Prompts in the file read. */
  pool: number;
  /** True when at least one prompt failed and `to` holds the failed ones. */
  written: boolean;
}

/**
 * GRPO's promptFilter 'failed' over a file: reads the prompts with answers in
 * `from`, keeps the first `want` that `complete` answers wrong
 * (selectFailedPrompts) and writes those lines of `from` to `to` byte for
 * byte. When none fails, nothing is written and `written` is false.
 */
export async function writeFailedPrompts(from: string, complete: CompleteFn, to: string, options: SelectFailedPromptsOptions = {}): Promise<FailedPromptsFile> {
  const pool = await readEvalData(from);
  if (pool.kind !== 'answers') throw new Error(`${pool.file}: expected prompts with answers (a "prompt" and an "answer" on each line)`);
  const selected = await selectFailedPrompts(pool.items, complete, options);
  if (selected.lines.length > 0) await writeSelectedLines(from, selected.lines, to);
  return { ...selected, pool: pool.items.length, written: selected.lines.length > 0 };
}
