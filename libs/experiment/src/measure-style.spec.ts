import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '@posttrain/backend';
import { createModelConfig, initModel } from '@posttrain/model';
import { createBuiltinTokenizer } from '@posttrain/tokenizer';
import { measureStyle } from './model-evaluation';
import { float64ReplyLogProb } from './test-support';

describe('measureStyle', () => {
  test('equals the product of next-token probabilities of each opening, recomputed in float64 from the logits; share and entropy by the formula', async () => {
    await initBackend({ logger: { info: () => undefined } });
    const tok = createBuiltinTokenizer();
    const model = initModel(createModelConfig({ vocabSize: tok.vocabSize, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 2 }), { seed: 5 });
    try {
      const prompts = [[{ role: 'user' as const, content: 'What is 12+7?' }], [{ role: 'user' as const, content: '45-13=?' }]];
      const m = measureStyle(model, tok, prompts, 'Sure! To ', 'To ');
      // Independent: one forward pass per prompt + opening, log-softmax in float64, summed over the opening's tokens.
      const reference = (messages: (typeof prompts)[number], opening: string): number => {
        const prompt = tok.encodeChat(messages, { addGenerationPrompt: true }).ids;
        return Math.exp(float64ReplyLogProb(model, prompt, tok.encode(opening, { addSpecialTokens: false })));
      };
      const h = (q: number): number => -q * Math.log(q) - (1 - q) * Math.log(1 - q);
      prompts.forEach((p, i) => {
        const pf = reference(p, 'Sure! To ');
        const pd = reference(p, 'To ');
        // Tolerance: float32 log-probs over ~10 tokens, relative 1e-4.
        assert.ok(Math.abs(m.preferred[i] - pf) <= 1e-4 * pf, `preferred ${m.preferred[i]} vs ${pf}`);
        assert.ok(Math.abs(m.other[i] - pd) <= 1e-4 * pd, `other ${m.other[i]} vs ${pd}`);
      });
      const shares = prompts.map((_, i) => m.preferred[i] / (m.preferred[i] + m.other[i]));
      assert.ok(Math.abs(m.rate - (m.preferred[0] + m.preferred[1]) / 2) < 1e-12);
      assert.ok(Math.abs(m.share - (shares[0] + shares[1]) / 2) < 1e-12);
      assert.ok(Math.abs(m.entropy - (h(shares[0]) + h(shares[1])) / 2) < 1e-12);
      assert.throws(() => measureStyle(model, tok, [], 'a', 'b'), /prompts: got an empty list/);
    } finally {
      model.dispose();
    }
  });
});
