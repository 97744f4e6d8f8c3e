import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DataRecord } from './data-record';
import { FakeTokenizer } from './fake-tokenizer';
import { tokenizePreference, tokenizePrompt, tokenizeSft, type SftTokenizeOptions } from './tokenize-example';
import type { ChatMessage } from './tokenizer-like';

// Independent of the tokenizer's code: FakeTokenizer's documented id of a character is its code point + 4.
const chars = (s: string) => Array.from(s, (c) => (c.codePointAt(0) as number) + 4);
const BOS = 1;
const EOS = 2;
const END = 3;
const zeros = (n: number) => new Array<number>(n).fill(0);
const ones = (n: number) => new Array<number>(n).fill(1);
const tok = new FakeTokenizer();
const sft: SftTokenizeOptions = { maxLength: null, truncation: 'truncate', assistantOnlyLoss: true, completionOnlyLoss: true };
const at = (record: DataRecord) => ({ line: 7, record });
const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });

describe('tokenizeSft', () => {
  test('text trains on every token but the first, and ends with EOS', () => {
    const r = tokenizeSft(at({ format: 'language-modeling', style: 'standard', text: 'ab' }), tok, sft);
    assert.deepEqual(r, { ok: true, truncated: false, example: { line: 7, inputIds: [BOS, ...chars('ab'), EOS], lossMask: [0, 1, 1, 1] } });
  });

  test('conversations train on assistant turns only (from encodeChat), or on everything', () => {
    const record: DataRecord = { format: 'language-modeling', style: 'conversational', messages: [user('hi'), assistant('yo')] };
    const ids = [BOS, ...chars('user:'), ...chars('hi'), END, ...chars('assistant:'), ...chars('yo'), END];
    const r = tokenizeSft(at(record), tok, sft);
    assert.ok(r.ok);
    assert.deepEqual(r.example.inputIds, ids);
    // 1 + 5 + 3 + 10 untrained tokens, then "yo" and its end-of-turn.
    assert.deepEqual(r.example.lossMask, [...zeros(19), 1, 1, 1]);
    const all = tokenizeSft(at(record), tok, { ...sft, assistantOnlyLoss: false });
    assert.ok(all.ok);
    assert.deepEqual(all.example.lossMask, [0, ...ones(21)]);
  });

  test('no assistant turn is located when nothing needs it: full-loss conversations, prompts, preference pairs', () => {
    // A tokenizer whose templates cannot locate assistant turns still serves every path that does not mask by them.
    class NoSpans extends FakeTokenizer {
      override encodeChat(): never {
        throw new Error('assistant spans were computed');
      }
      override encodeChatIds(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}) {
        return super.encodeChat(messages, options).ids;
      }
    }
    const noSpans = new NoSpans();
    const messages = [user('hi'), assistant('yo'), user('again')];
    const all = tokenizeSft(at({ format: 'language-modeling', style: 'conversational', messages: messages.slice(0, 2) }), noSpans, { ...sft, assistantOnlyLoss: false });
    assert.ok(all.ok);
    assert.deepEqual(all.example.lossMask, [0, ...ones(21)]);
    assert.throws(() => tokenizeSft(at({ format: 'language-modeling', style: 'conversational', messages: messages.slice(0, 2) }), noSpans, sft), /assistant spans were computed/);
    const prompt = tokenizePrompt(at({ format: 'prompt-only', style: 'conversational', prompt: messages, groundTruth: null }), noSpans, { maxLength: null, truncation: 'truncate' });
    assert.ok(prompt.ok);
    assert.deepEqual(prompt.example.promptIds.slice(-10), chars('assistant:'));
    const pair = tokenizePreference(at({ format: 'preference', style: 'conversational', prompt: messages, chosen: [assistant('a')], rejected: [assistant('b')] }), noSpans, { maxLength: null, truncation: 'truncate' });
    assert.ok(pair.ok);
    assert.deepEqual(pair.example.chosenIds, [...chars('a'), END]);
  });

  test('conversational completion: what the template appends after the last reply is not trained', () => {
    // A template that, like Llama-3's base template, always appends the next assistant header.
    class TrailingHeader extends FakeTokenizer {
      override encodeChat(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}) {
        return super.encodeChat(messages, { ...options, addGenerationPrompt: true });
      }
    }
    const record: DataRecord = { format: 'prompt-completion', style: 'conversational', prompt: [user('q')], completion: [assistant('ab')] };
    const r = tokenizeSft(at(record), new TrailingHeader(), sft);
    assert.ok(r.ok);
    const prompt = [BOS, ...chars('user:'), ...chars('q'), END, ...chars('assistant:')];
    assert.deepEqual(r.example.inputIds, [...prompt, ...chars('ab'), END, ...chars('assistant:')]);
    assert.deepEqual(r.example.lossMask, [...zeros(prompt.length), 1, 1, 1, ...zeros(10)]);
  });

  test('standard prompt-completion trains on the completion and EOS', () => {
    const record: DataRecord = { format: 'prompt-completion', style: 'standard', prompt: '1+1=', completion: '2' };
    const r = tokenizeSft(at(record), tok, sft);
    assert.ok(r.ok);
    assert.deepEqual(r.example.inputIds, [BOS, ...chars('1+1='), ...chars('2'), EOS]);
    assert.deepEqual(r.example.lossMask, [0, 0, 0, 0, 0, 1, 1]);
    const all = tokenizeSft(at(record), tok, { ...sft, completionOnlyLoss: false });
    assert.ok(all.ok);
    assert.deepEqual(all.example.lossMask, [0, 1, 1, 1, 1, 1, 1]);
  });

  test('conversational prompt-completion trains on what follows the generation prompt', () => {
    const record: DataRecord = { format: 'prompt-completion', style: 'conversational', prompt: [user('12+7?')], completion: [assistant('19')] };
    const r = tokenizeSft(at(record), tok, sft);
    assert.ok(r.ok);
    const prompt = [BOS, ...chars('user:'), ...chars('12+7?'), END, ...chars('assistant:')];
    assert.deepEqual(r.example.inputIds, [...prompt, ...chars('19'), END]);
    assert.deepEqual(r.example.lossMask, [...zeros(prompt.length), 1, 1, 1]);
  });

  test('a chat template that renders the prompt differently is a drop with a reason', () => {
    class OddTemplate extends FakeTokenizer {
      override encodeChat(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}) {
        const out = super.encodeChat(messages, options);
        if (options.addGenerationPrompt) out.ids.push(END);
        return out;
      }
    }
    const record: DataRecord = { format: 'prompt-completion', style: 'conversational', prompt: [user('q')], completion: [assistant('a')] };
    const r = tokenizeSft(at(record), new OddTemplate(), sft);
    assert.ok(!r.ok);
    assert.match(r.reason, /chat template renders the prompt/);
  });

  test('maxLength: truncate keeps the start; drop drops; nothing left to train on drops', () => {
    const record: DataRecord = { format: 'language-modeling', style: 'standard', text: 'abcdef' };
    const cut = tokenizeSft(at(record), tok, { ...sft, maxLength: 4 });
    assert.deepEqual(cut, { ok: true, truncated: true, example: { line: 7, inputIds: [BOS, ...chars('abc')], lossMask: [0, 1, 1, 1] } });
    const dropped = tokenizeSft(at(record), tok, { ...sft, maxLength: 4, truncation: 'drop' });
    assert.deepEqual(dropped, { ok: false, reason: '8 tokens, more than maxLength 4' });
    const pc: DataRecord = { format: 'prompt-completion', style: 'standard', prompt: 'long prompt', completion: 'x' };
    const empty = tokenizeSft(at(pc), tok, { ...sft, maxLength: 5 });
    assert.deepEqual(empty, { ok: false, reason: 'no trained tokens within maxLength 5' });
  });

  test('rejects data of the wrong stage loudly', () => {
    assert.throws(() => tokenizeSft(at({ format: 'prompt-only', style: 'standard', prompt: 'a', groundTruth: null }), tok, sft), /SFT needs .*prompt-only record \(line 7\)/);
  });
});

describe('tokenizePreference', () => {
  test('standard: prompt once, responses without BOS and ending in EOS', () => {
    const record: DataRecord = { format: 'preference', style: 'standard', prompt: '1+1=', chosen: '2', rejected: '3' };
    const r = tokenizePreference(at(record), tok, { maxLength: null, truncation: 'truncate' });
    assert.deepEqual(r, {
      ok: true,
      truncated: false,
      example: { line: 7, promptIds: [BOS, ...chars('1+1=')], chosenIds: [...chars('2'), EOS], rejectedIds: [...chars('3'), EOS] },
    });
  });

  test('conversational (implicit prompt): responses are the template tokens after the generation prompt', () => {
    const record: DataRecord = { format: 'implicit-preference', style: 'conversational', prompt: [user('q')], chosen: [assistant('yes')], rejected: [assistant('no')] };
    const r = tokenizePreference(at(record), tok, { maxLength: null, truncation: 'truncate' });
    assert.ok(r.ok);
    assert.deepEqual(r.example.promptIds, [BOS, ...chars('user:'), ...chars('q'), END, ...chars('assistant:')]);
    assert.deepEqual(r.example.chosenIds, [...chars('yes'), END]);
    assert.deepEqual(r.example.rejectedIds, [...chars('no'), END]);
  });

  test('maxLength cuts responses after the prompt; a prompt with no room drops the pair', () => {
    const record: DataRecord = { format: 'preference', style: 'standard', prompt: '1+1=', chosen: '22', rejected: '3' };
    // prompt 5 tokens, chosen 3, rejected 2: longest 8.
    const cut = tokenizePreference(at(record), tok, { maxLength: 6, truncation: 'truncate' });
    assert.ok(cut.ok && cut.truncated);
    assert.deepEqual(cut.example.chosenIds, chars('2'));
    assert.deepEqual(cut.example.rejectedIds, chars('3'));
    assert.deepEqual(tokenizePreference(at(record), tok, { maxLength: 7, truncation: 'drop' }), {
      ok: false,
      reason: '8 tokens (prompt + longer response), more than maxLength 7',
    });
    const noRoom = tokenizePreference(at(record), tok, { maxLength: 5, truncation: 'truncate' });
    assert.ok(!noRoom.ok);
    assert.match(noRoom.reason, /prompt of 5 tokens leaves no room/);
  });
});

describe('tokenizePrompt', () => {
  test('standard and conversational prompts, with the ground truth', () => {
    const r = tokenizePrompt(at({ format: 'prompt-only', style: 'standard', prompt: 'abc', groundTruth: '42' }), tok, { maxLength: null, truncation: 'truncate' });
    assert.deepEqual(r, { ok: true, truncated: false, example: { line: 7, promptIds: [BOS, ...chars('abc')], prompt: 'abc', groundTruth: '42' } });
    const chat = tokenizePrompt(at({ format: 'prompt-only', style: 'conversational', prompt: [user('q')], groundTruth: null }), tok, { maxLength: null, truncation: 'truncate' });
    assert.ok(chat.ok);
    assert.deepEqual(chat.example.promptIds, [BOS, ...chars('user:'), ...chars('q'), END, ...chars('assistant:')]);
  });

  test('prompts of other formats work, without ground truth; too long keeps the end or drops', () => {
    const record: DataRecord = { format: 'prompt-completion', style: 'standard', prompt: 'abcd', completion: 'x' };
    const cut = tokenizePrompt(at(record), tok, { maxLength: 2, truncation: 'truncate' });
    assert.deepEqual(cut, { ok: true, truncated: true, example: { line: 7, promptIds: chars('cd'), prompt: 'abcd', groundTruth: null } });
    assert.deepEqual(tokenizePrompt(at(record), tok, { maxLength: 2, truncation: 'drop' }), { ok: false, reason: 'prompt of 5 tokens, more than maxLength 2' });
  });
});
