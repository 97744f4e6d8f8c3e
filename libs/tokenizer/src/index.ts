/**
 * @posttrain/tokenizer: Hugging Face tokenizers (`tokenizer.json` through
 * @huggingface/tokenizers), chat templates (`tokenizer_config.json` through
 * @huggingface/jinja), assistant-token masks for assistant-only SFT loss, and
 * the built-in character-level tokenizer of the project's tiny model.
 *
 * @example
 * ```ts
 * import { loadTokenizer, writeBuiltinTokenizer } from '@posttrain/tokenizer';
 * await writeBuiltinTokenizer('models/tiny');
 * const tok = await loadTokenizer('models/tiny');
 * const { ids, assistantMask } = tok.encodeChat([
 *   { role: 'user', content: '2+2?' },
 *   { role: 'assistant', content: '4' },
 * ]);
 * // assistantMask is 1 on "4" and "<|im_end|>", 0 elsewhere
 * ```
 */
export { BUILTIN_SPECIAL_TOKENS, buildBuiltinTokenizerFiles, CHATML_TEMPLATE, createBuiltinTokenizer, writeBuiltinTokenizer } from './builtin-tokenizer';
export { ChatTemplate } from './chat-template';
export type { RenderedChat, TemplateSpecialTokens } from './chat-template';
export { createTokenizer, loadTokenizer } from './load-tokenizer';
export type { TokenizerFiles } from './load-tokenizer';
export type { ChatMessage, EncodedChat, Tokenizer } from './tokenizer';
export { tokenizerVocabSize } from './tokenizer-vocab-size';
export { TokenizerError } from './tokenizer-error';
