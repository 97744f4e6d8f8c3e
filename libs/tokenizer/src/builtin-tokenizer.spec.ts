import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createBuiltinTokenizer, writeBuiltinTokenizer } from './builtin-tokenizer';
import { loadTokenizer } from './load-tokenizer';
import type { Tokenizer } from './tokenizer';

let dir = '';
let tok: Tokenizer;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'builtin-tokenizer-'));
  await writeBuiltinTokenizer(dir);
  tok = await loadTokenizer(dir);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Layout by hand: 0-4 specials, 5 "\n", then printable ASCII from 0x20 at id 6, so id(c) = 6 + code(c) - 0x20.
const id = (c: string): number => 6 + c.charCodeAt(0) - 0x20;
const SPECIAL = { endoftext: 0, imStart: 1, imEnd: 2, pad: 3, unk: 4 };

describe('built-in tokenizer', () => {
  test('is written as standard files and loads through loadTokenizer', async () => {
    assert.deepEqual((await readdir(dir)).sort(), ['special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    assert.equal(tok.vocabSize, 101); // 5 specials + "\n" + 95 printable characters, under the model's 256
    assert.equal(createBuiltinTokenizer().vocabSize, 101);
  });

  test('special tokens map to their ids', () => {
    assert.equal(tok.tokenToId('<|endoftext|>'), SPECIAL.endoftext);
    assert.equal(tok.tokenToId('<|im_start|>'), SPECIAL.imStart);
    assert.equal(tok.tokenToId('<|im_end|>'), SPECIAL.imEnd);
    assert.equal(tok.tokenToId('<|pad|>'), SPECIAL.pad);
    assert.equal(tok.eosTokenId, SPECIAL.imEnd);
    assert.equal(tok.padTokenId, SPECIAL.pad);
    assert.equal(tok.bosTokenId, null);
    assert.equal(tok.idToToken(5), '\n');
    assert.equal(tok.idToToken(id('A')), 'A');
    assert.equal(tok.tokenToId('é'), undefined);
  });

  test('encodes characters to hand-computed ids', () => {
    assert.deepEqual(tok.encode('Hi\n'), [46, 79, 5]); // H = 6 + 0x48 - 0x20 = 46, i = 6 + 0x69 - 0x20 = 79
    assert.deepEqual(tok.encode(' ~'), [6, 100]);
    assert.deepEqual(tok.encode('a<|im_end|>b'), [id('a'), SPECIAL.imEnd, id('b')]);
    assert.deepEqual(tok.encode('x é'), [id('x'), id(' '), SPECIAL.unk]);
  });

  test('encode -> decode round trip over every supported character', () => {
    let all = '\n';
    for (let c = 0x20; c <= 0x7e; c++) all += String.fromCharCode(c);
    assert.equal(tok.decode(tok.encode(all)), all);
    const text = '  12 + 30 = 42\n\nstep 1: carry  the 1<|endoftext|>next doc';
    assert.equal(tok.decode(tok.encode(text)), text);
    assert.equal(tok.decode(tok.encode(text), { skipSpecialTokens: true }), text.replace('<|endoftext|>', ''));
    assert.throws(() => tok.decode([5, 101]), /"ids\[1\]": 101 is not a token id \(expected an integer in \[0, 101\)\)/);
  });

  test('ChatML assistant mask, token by token against a hand-built expectation', () => {
    const { ids, assistantMask } = tok.encodeChat([
      { role: 'system', content: 'S' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Yo' },
      { role: 'user', content: 'ok?' },
      { role: 'assistant', content: 'k' },
    ]);
    const expected: [number, number][] = [];
    const add = (text: string, mask: number) => {
      for (const c of text) expected.push([id(c), mask]);
    };
    const turn = (role: string, content: string, assistant: boolean) => {
      expected.push([SPECIAL.imStart, 0]);
      add(`${role}`, 0);
      expected.push([5, 0]); // "\n" after the role: header, not masked
      add(content, assistant ? 1 : 0);
      expected.push([SPECIAL.imEnd, assistant ? 1 : 0]); // the end-of-turn token is learned with the reply
      expected.push([5, 0]); // the separator after <|im_end|> is template formatting
    };
    turn('system', 'S', false);
    turn('user', 'Hi', false);
    turn('assistant', 'Yo', true);
    turn('user', 'ok?', false);
    turn('assistant', 'k', true);
    assert.deepEqual(ids, expected.map(([i]) => i));
    assert.deepEqual(assistantMask, expected.map(([, m]) => m));
  });

  test('generation prompt: rendered at the end and never masked', () => {
    const messages = [{ role: 'user', content: '1+1?' }];
    const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
    assert.equal(text, '<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n');
    assert.equal(tok.applyChatTemplate(messages), '<|im_start|>user\n1+1?<|im_end|>\n');
    const { ids, assistantMask } = tok.encodeChat(messages, { addGenerationPrompt: true });
    assert.deepEqual(ids.slice(-11), [SPECIAL.imStart, ...[...'assistant'].map(id), 5]);
    assert.ok(assistantMask.every((m) => m === 0));
    // Where spans border special tokens, piecewise encoding equals encoding the whole text.
    assert.deepEqual(ids, tok.encode(text, { addSpecialTokens: false }));
  });
});
