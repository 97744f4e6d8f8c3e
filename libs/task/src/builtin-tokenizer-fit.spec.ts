import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createBuiltinTokenizer } from '@posttrain/tokenizer';
import { generateTaskData, type PreferenceRecord, type SftRecord } from './generate-task-data';

/**
 * The task is sized for the project's tiny character-level model: every
 * dialogue, rendered with the built-in tokenizer's ChatML template, must fit
 * a short context and contain no unknown character.
 */
describe('task data through the built-in tokenizer', () => {
  test('every SFT and preference dialogue is at most 144 tokens (3 digits), 120 on the 2-digit slice of the demo with ChatML, with no <|unk|>', () => {
    const tok = createBuiltinTokenizer();
    const unk = tok.encode('<|unk|>', { addSpecialTokens: false });
    assert.equal(unk.length, 1);
    const data = generateTaskData({ seed: 2, sftSizes: [1000], corpusSize: 1, preferenceSize: 500, promptsSize: 1, evalSize: 100 });
    let longest = 0;
    let dialogues = 0;
    for (const f of data.files) {
      for (const r of f.records) {
        const conversations =
          'messages' in r ? [(r as SftRecord).messages] : 'chosen' in r ? [[...(r as PreferenceRecord).prompt, ...(r as PreferenceRecord).chosen], [...(r as PreferenceRecord).prompt, ...(r as PreferenceRecord).rejected]] : [];
        for (const messages of conversations) {
          const { ids } = tok.encodeChat(messages);
          assert.ok(!ids.includes(unk[0]), JSON.stringify(messages));
          longest = Math.max(longest, ids.length);
          dialogues++;
        }
      }
    }
    assert.equal(dialogues, 1000 + 100 + 2 * 2 * (500 + 100)); // style and correctness pairs
    assert.ok(longest <= 144, `longest dialogue is ${longest} tokens`);
    // The demo's slice (2-digit addition and subtraction) fits its 128-token rows with room to spare.
    const demo = generateTaskData({ seed: 2, operations: ['add', 'sub'], minDigits: 2, maxDigits: 2, sftSizes: [1000], corpusSize: 1, preferenceSize: 500, promptsSize: 1, evalSize: 100 });
    let longestDemo = 0;
    for (const f of demo.files) {
      for (const r of f.records) {
        const conversations = 'messages' in r ? [(r as SftRecord).messages] : 'chosen' in r ? [[...(r as PreferenceRecord).prompt, ...(r as PreferenceRecord).chosen], [...(r as PreferenceRecord).prompt, ...(r as PreferenceRecord).rejected]] : [];
        for (const messages of conversations) longestDemo = Math.max(longestDemo, tok.encodeChat(messages).ids.length);
      }
    }
    assert.ok(longestDemo <= 120, `longest 2-digit dialogue is ${longestDemo} tokens`);
  });
});
