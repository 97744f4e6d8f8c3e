import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '@posttrain/backend';
import { createModelConfig, initModel } from '@posttrain/model';
import { createBuiltinTokenizer } from '@posttrain/tokenizer';
import type { DataLine } from '@posttrain/data';
import { tokenizeSft } from '@posttrain/data';
import { pairLogProbs, throughStop, tokenizePairs } from './model-evaluation';
import { float64ReplyLogProb } from './test-support';

describe('throughStop', () => {
  test('keeps the tokens up to and including the first stop token, all of them without one', () => {
    assert.deepEqual(throughStop([5, 6, 2, 9, 2], new Set([2])), [5, 6, 2]);
    assert.deepEqual(throughStop([5, 6, 9], new Set([2])), [5, 6, 9]);
    assert.deepEqual(throughStop([2, 7], new Set([2, 7])), [2]);
    assert.deepEqual(throughStop([5, 6], new Set()), [5, 6]);
  });
});

describe('pairLogProbs', () => {
  test("sums log pi over each reply through its end-of-turn token, not the template's newline after it; recomputed in float64 from the logits", async () => {
    await initBackend({ logger: { info: () => undefined } });
    const tok = createBuiltinTokenizer();
    const model = initModel(createModelConfig({ vocabSize: tok.vocabSize, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 2, eosTokenId: tok.eosTokenId }), { seed: 7 });
    try {
      const prompt = [{ role: 'user' as const, content: 'What is 12+7?' }];
      const line: DataLine = {
        line: 1,
        record: { format: 'preference', style: 'conversational', prompt, chosen: [{ role: 'assistant', content: 'Sure! 19' }], rejected: [{ role: 'assistant', content: '19' }] },
      } as DataLine;
      const [pair] = tokenizePairs([line], tok);
      // The template's rendering of a reply ends "<|im_end|>\n": the newline comes after the stop token.
      const imEnd = tok.eosTokenId;
      assert.equal(pair.chosenIds.at(-2), imEnd);
      assert.equal(tok.decode([pair.chosenIds.at(-1)!]), '\n');

      // Independent: one forward pass per prompt + reply, log-softmax in float64, summed from the
      // reply's first token through <|im_end|>.
      const reference = (reply: readonly number[]): number => float64ReplyLogProb(model, pair.promptIds, reply);
      const chosenThrough = pair.chosenIds.slice(0, -1);
      const rejectedThrough = pair.rejectedIds.slice(0, -1);
      const lps = pairLogProbs(model, [pair]);
      // Tolerance: float32 log-probs summed over ~15 tokens, 1e-3 nats.
      assert.ok(Math.abs(lps.chosenLogProbs[0] - reference(chosenThrough)) < 1e-3, `chosen ${lps.chosenLogProbs[0]} vs ${reference(chosenThrough)}`);
      assert.ok(Math.abs(lps.rejectedLogProbs[0] - reference(rejectedThrough)) < 1e-3, `rejected ${lps.rejectedLogProbs[0]} vs ${reference(rejectedThrough)}`);
      assert.deepEqual([lps.chosenLengths[0], lps.rejectedLengths[0]], [chosenThrough.length, rejectedThrough.length]);
      // The newline's own log-prob is not in the sum: with no stop tokens it is.
      const all = pairLogProbs(model, [pair], 16, []);
      assert.ok(Math.abs(all.chosenLogProbs[0] - reference(pair.chosenIds)) < 1e-3);
      assert.ok(Math.abs(all.chosenLogProbs[0] - lps.chosenLogProbs[0]) > 1e-3, 'the newline after <|im_end|> carries a log-prob of its own');
      assert.equal(all.chosenLengths[0], pair.chosenIds.length);
    } finally {
      model.dispose();
    }
  });

  test('scores exactly the reply tokens SFT trains on: the assistant mask of the same conversation, and the completion loss', () => {
    const tok = createBuiltinTokenizer();
    const stops = new Set([tok.eosTokenId]);
    const prompt = [{ role: 'user' as const, content: 'Compute 45-13.' }];
    const reply = { role: 'assistant' as const, content: 'Sure! To take 13 from 45: 5-3=2, 4-1=3, so the difference is 32.\nAnswer: 32' };
    const [pair] = tokenizePairs([{ line: 1, record: { format: 'preference', style: 'conversational', prompt, chosen: [reply], rejected: [{ ...reply, content: 'Answer: 32' }] } } as DataLine], tok);
    const length = { maxLength: null, truncation: 'truncate' as const };
    const trained = (line: DataLine, options: { assistantOnlyLoss: boolean; completionOnlyLoss: boolean }): number[] => {
      const r = tokenizeSft(line, tok, { ...length, ...options });
      assert.ok(r.ok);
      return r.example.inputIds.filter((_, i) => r.example.lossMask[i] === 1);
    };
    const messages = trained({ line: 1, record: { format: 'language-modeling', style: 'conversational', messages: [...prompt, reply] } } as DataLine, { assistantOnlyLoss: true, completionOnlyLoss: true });
    const completion = trained({ line: 1, record: { format: 'prompt-completion', style: 'conversational', prompt, completion: [reply] } } as DataLine, { assistantOnlyLoss: true, completionOnlyLoss: true });
    assert.deepEqual(throughStop(pair.chosenIds, stops), messages);
    assert.deepEqual(messages, completion);
    assert.equal(pair.chosenIds.length, messages.length + 1, 'the template adds one token after <|im_end|>, which neither scores nor trains');
  });
});
