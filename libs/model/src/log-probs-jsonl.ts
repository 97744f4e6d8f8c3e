/**
 * Per-token log-probs for JSONL inputs (`posttrain model logprobs`).
 *
 * Each non-blank input line is one object, either
 *   {"input_ids": [..]}                          -> adds "logprobs": log p of tokens 1..n-1
 *   {"prompt_ids": [..], "completion_ids": [..]} -> adds "logprobs" of the completion tokens
 * or, when an `encode` function (a tokenizer) is given, the same with text:
 *   {"text": ".."} / {"prompt": "..", "completion": ".."}.
 * Every output line is the input object plus "logprobs" (one per scored token) and "sum_logprob".
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '@posttrain/safetensors';
import type { LlamaModel } from './llama-model';
import { sequenceTokenLogProbs } from './token-log-probs';

export interface LogProbsJsonlOptions {
  temperature?: number;
  batchSize?: number;
  /** Tokenizer for "text" / "prompt"+"completion" lines. */
  encode?: (text: string) => number[];
}

interface ParsedLine {
  raw: Record<string, unknown>;
  ids: number[];
  promptLength: number;
}

function idsField(v: unknown, where: string, field: string, vocab: number): number[] {
  if (!Array.isArray(v)) throw new Error(`${where}: "${field}" is ${JSON.stringify(v)}; expected an array of token ids`);
  v.forEach((x, i) => {
    if (!Number.isInteger(x) || x < 0 || x >= vocab) throw new Error(`${where}: "${field}"[${i}] is ${JSON.stringify(x)}; expected a token id in [0, ${vocab})`);
  });
  return v as number[];
}

function textField(v: unknown, where: string, field: string): string {
  if (typeof v !== 'string') throw new Error(`${where}: "${field}" is ${JSON.stringify(v)}; expected a string`);
  return v;
}

function parseLine(line: string, where: string, vocab: number, encode?: (text: string) => number[]): ParsedLine {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (e) {
    throw new Error(`${where}: invalid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where}: expected a JSON object`);
  const r = raw as Record<string, unknown>;
  const needEncode = (field: string) => {
    if (!encode) throw new Error(`${where}: "${field}" needs a tokenizer; give token ids ("input_ids" or "prompt_ids"+"completion_ids") or pass encode`);
    return encode;
  };
  let prompt: number[];
  let completion: number[];
  if ('input_ids' in r) {
    const ids = idsField(r.input_ids, where, 'input_ids', vocab);
    if (ids.length < 2) throw new Error(`${where}: "input_ids" has ${ids.length} token(s); expected at least 2`);
    return { raw: r, ids, promptLength: 1 };
  } else if ('prompt_ids' in r || 'completion_ids' in r) {
    prompt = idsField(r.prompt_ids, where, 'prompt_ids', vocab);
    completion = idsField(r.completion_ids, where, 'completion_ids', vocab);
  } else if ('text' in r) {
    const ids = needEncode('text')(textField(r.text, where, 'text'));
    if (ids.length < 2) throw new Error(`${where}: "text" encodes to ${ids.length} token(s); expected at least 2`);
    return { raw: r, ids: idsField(ids, where, 'text (encoded)', vocab), promptLength: 1 };
  } else if ('prompt' in r || 'completion' in r) {
    const enc = needEncode('prompt');
    prompt = idsField(enc(textField(r.prompt, where, 'prompt')), where, 'prompt (encoded)', vocab);
    completion = idsField(enc(textField(r.completion, where, 'completion')), where, 'completion (encoded)', vocab);
  } else {
    throw new Error(`${where}: expected "input_ids", "prompt_ids"+"completion_ids", "text" or "prompt"+"completion"; got keys ${JSON.stringify(Object.keys(r))}`);
  }
  if (prompt.length < 1) throw new Error(`${where}: the prompt is empty; expected at least one token to condition on`);
  if (completion.length < 1) throw new Error(`${where}: the completion is empty; expected at least one token to score`);
  return { raw: r, ids: [...prompt, ...completion], promptLength: prompt.length };
}

/** Scores JSONL text; `source` names the input in errors (with line numbers). Returns the output JSONL text. */
export function logProbsJsonlText(model: LlamaModel, text: string, source: string, options: LogProbsJsonlOptions = {}): string {
  const lines = text.split('\n');
  const parsed: ParsedLine[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    parsed.push(parseLine(line, `${source}:${i + 1}`, model.config.vocabSize, options.encode));
  });
  const lp = sequenceTokenLogProbs(model, parsed.map((p) => p.ids), {
    temperature: options.temperature,
    batchSize: options.batchSize,
    promptLengths: parsed.map((p) => p.promptLength),
  });
  return parsed.map((p, i) => JSON.stringify({ ...p.raw, logprobs: lp[i], sum_logprob: lp[i].reduce((a, b) => a + b, 0) }) + '\n').join('');
}

/** Reads `inputPath`, writes the scored lines to `outputPath` (atomically); returns the number of lines scored. */
export async function logProbsJsonlFile(model: LlamaModel, inputPath: string, outputPath: string, options: LogProbsJsonlOptions = {}): Promise<number> {
  const text = await readFile(inputPath, 'utf8');
  const out = logProbsJsonlText(model, text, inputPath, options);
  await writeFileAtomic(outputPath, out);
  return out === '' ? 0 : out.split('\n').length - 1;
}
