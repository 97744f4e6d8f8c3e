import { join } from 'node:path';
import { tokenizerVocabSize } from '@posttrain/tokenizer';
import type { ModelConfig } from './model-config';
import { ModelConfigError } from './model-config';

/**
 * Refuses a model directory whose files disagree about token ids, with one
 * error naming both files and the numbers, before any weight is read:
 * - every id of tokenizer.json (its vocabulary and added tokens, so every
 *   special token too) needs an embedding row: config.json "vocab_size" may
 *   be padded larger than the tokenizer (Qwen, Gemma do), never smaller;
 * - generation_config.json's bos/eos/pad ids must be rows of the embedding.
 * config.json's own bos/eos/pad ids are checked against its vocab_size when
 * it is parsed. `assets` holds the directory's files by name (as read).
 */
export function checkModelFiles(dir: string, config: ModelConfig, assets: ReadonlyMap<string, string>): void {
  const configName = join(dir, 'config.json');
  const v = config.vocabSize;
  const tokenizerText = assets.get('tokenizer.json');
  if (tokenizerText !== undefined) {
    const tokenizerName = join(dir, 'tokenizer.json');
    const n = tokenizerVocabSize(parseJson(tokenizerText, tokenizerName), tokenizerName);
    if (n > v) {
      throw new ModelConfigError(
        `${tokenizerName} has ${n} tokens (ids 0..${n - 1}) but ${configName} "vocab_size" is ${v}: the embedding needs a row for every token id (it may be padded larger, never smaller); expected "vocab_size" >= ${n}`,
      );
    }
  }
  const generationText = assets.get('generation_config.json');
  if (generationText !== undefined) {
    const generationName = join(dir, 'generation_config.json');
    const raw = parseJson(generationText, generationName);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ModelConfigError(`${generationName}: expected a JSON object`);
    for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id']) {
      const value = (raw as Record<string, unknown>)[key];
      if (value === undefined || value === null) continue;
      const ids = Array.isArray(value) ? value : [value];
      const bad = ids.find((id) => !Number.isInteger(id) || (id as number) < 0 || (id as number) >= v);
      if (bad !== undefined) {
        throw new ModelConfigError(`${generationName} "${key}" is ${JSON.stringify(value)} but ${configName} "vocab_size" is ${v}: expected token id(s) in [0, ${v})`);
      }
    }
  }
}

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelConfigError(`${name}: invalid JSON (${(e as Error).message})`);
  }
}
