import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTokenizer } from './load-tokenizer';
import type { Tokenizer } from './tokenizer';

/**
 * Special tokens of the built-in tokenizer, ids 0-4. `<|endoftext|>` separates
 * documents in pretraining text; `<|im_end|>` ends a chat turn and is the EOS
 * (as in Qwen2 instruct models, so generation stops at the end of a reply).
 */
export const BUILTIN_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|pad|>', '<|unk|>'] as const;

/** ChatML, as the built-in tokenizer_config.json carries it. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * The files of the built-in character-level tokenizer for the project's tiny
 * model: 101 tokens (the 5 special tokens, "\n", and printable ASCII 0x20-0x7E),
 * so it fits the default vocabulary of 256. Any other character encodes to
 * `<|unk|>`.
 *
 * tokenizer.json expresses it with standard components, so Hugging Face
 * `tokenizers` (Rust/Python) loads it too: a BPE model with no merges (every
 * character is its own token; @huggingface/tokenizers has no WordLevel model),
 * no normalizer or pre-tokenizer (whitespace is kept as tokens), and a Fuse
 * decoder (tokens are concatenated, not joined with spaces).
 */
export function buildBuiltinTokenizerFiles(): { tokenizerJson: object; tokenizerConfig: object; specialTokensMap: object } {
  const vocab: Record<string, number> = {};
  BUILTIN_SPECIAL_TOKENS.forEach((token, id) => (vocab[token] = id));
  vocab['\n'] = BUILTIN_SPECIAL_TOKENS.length;
  for (let code = 0x20; code <= 0x7e; code++) vocab[String.fromCharCode(code)] = BUILTIN_SPECIAL_TOKENS.length + 1 + (code - 0x20);
  const addedTokens = BUILTIN_SPECIAL_TOKENS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<|unk|>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const specialTokensMap = {
    eos_token: '<|im_end|>',
    pad_token: '<|pad|>',
    unk_token: '<|unk|>',
    additional_special_tokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    added_tokens_decoder: Object.fromEntries(addedTokens.map(({ id, ...rest }) => [String(id), rest])),
    bos_token: null,
    ...specialTokensMap,
    clean_up_tokenization_spaces: false,
    chat_template: CHATML_TEMPLATE,
  };
  return { tokenizerJson, tokenizerConfig, specialTokensMap };
}

/** The built-in tokenizer in memory (the same code path as loadTokenizer on its files). */
export function createBuiltinTokenizer(): Tokenizer {
  return createTokenizer(buildBuiltinTokenizerFiles(), '<builtin>');
}

/** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json of the built-in tokenizer into `dir`. */
export async function writeBuiltinTokenizer(dir: string): Promise<void> {
  const files = buildBuiltinTokenizerFiles();
  await mkdir(dir, { recursive: true });
  const write = (name: string, value: object) => writeFile(join(dir, name), `${JSON.stringify(value, null, 2)}\n`);
  await write('tokenizer.json', files.tokenizerJson);
  await write('tokenizer_config.json', files.tokenizerConfig);
  await write('special_tokens_map.json', files.specialTokensMap);
}
