/** Helpers shared by this library's specs: a tiny model directory with the built-in tokenizer, and toy data files. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@posttrain/backend';
import { initModelDir } from '@posttrain/model';
import { buildBuiltinTokenizerFiles, createBuiltinTokenizer } from '@posttrain/tokenizer';

/** The cpu backend: deterministic and fast enough for hidden size 32. */
export async function useCpuBackend(): Promise<void> {
  await initBackend({ backend: 'cpu', logger: { info: () => undefined } });
  if (tf.getBackend() !== 'cpu') throw new Error(`expected the cpu backend, got ${tf.getBackend()}`);
}

/** Writes a 2-layer, hidden-32 Llama with the built-in tokenizer into `dir`. */
export async function writeTinyModel(dir: string, seed = 1): Promise<void> {
  const tok = createBuiltinTokenizer();
  const files = buildBuiltinTokenizerFiles();
  await initModelDir(
    dir,
    { vocabSize: tok.vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 256, eosTokenId: tok.eosTokenId, padTokenId: tok.padTokenId },
    {
      seed,
      assets: {
        'tokenizer.json': JSON.stringify(files.tokenizerJson),
        'tokenizer_config.json': JSON.stringify(files.tokenizerConfig),
        'special_tokens_map.json': JSON.stringify(files.specialTokensMap),
      },
    },
  );
}

export async function writeJsonl(path: string, records: unknown[]): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, records.map((r) => JSON.stringify(r) + '\n').join(''));
}

/** Conversations "add a and b" -> "c" with one-digit operands. */
export function additionChats(n: number, offset = 0): { messages: { role: string; content: string }[] }[] {
  const out = [];
  for (let i = 0; i < n; i++) {
    const a = (i * 7 + offset) % 10;
    const b = (i * 3 + 1 + offset) % 10;
    out.push({ messages: [{ role: 'user', content: `${a}+${b}=?` }, { role: 'assistant', content: `${a + b}` }] });
  }
  return out;
}

/**
 * A learnable toy preference: the chosen answer is a run of "a", the rejected one a run of "b"
 * (same length), after prompts "q<i>".
 */
export function letterPreferences(n: number, offset = 0): { prompt: string; chosen: string; rejected: string }[] {
  const out = [];
  for (let i = 0; i < n; i++) {
    const len = 2 + ((i + offset) % 4);
    out.push({ prompt: `q${(i + offset) % 10}:`, chosen: 'a'.repeat(len), rejected: 'b'.repeat(len) });
  }
  return out;
}
