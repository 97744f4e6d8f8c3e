import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { summarizeAnswerEntropy, summarizeTokenEntropy } from './summarize-entropy';

describe('summarizeTokenEntropy', () => {
  test('token-weighted and per-sequence means, by hand', () => {
    // tokens: 3 + 1 + 0 = 4, total 6 + 4 = 10 -> 2.5 per token; sequence means 2 and 4 (the empty one skipped) -> 3.
    assert.deepEqual(summarizeTokenEntropy([[1, 2, 3], [4], []]), { sequences: 3, tokens: 4, meanPerToken: 2.5, meanPerSequence: 3 });
  });

  test('bad input names the field', () => {
    assert.throws(() => summarizeTokenEntropy([]), /entropies: got \[\], expected a non-empty list/);
    assert.throws(() => summarizeTokenEntropy([[0.5, -1]]), /entropies\[0\]\[1\]: got -1, expected a finite number >= 0/);
  });
});

describe('summarizeAnswerEntropy', () => {
  test('empirical entropy of the final answers per prompt, by hand', () => {
    const s = summarizeAnswerEntropy([
      ['1+4=5\nAnswer: 5', 'Answer: 5', 'Answer: 05', 'Answer: 6'], // 5 three times (05 is 5), 6 once
      ['no answer line', 'Answer: 7'], // "(none)" once, 7 once
      ['Answer: 9', 'Answer: 9'], // one answer: entropy 0
    ]);
    // H1 = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.5623351446188083; H2 = ln 2 = 0.6931471805599453; H3 = 0.
    const h1 = 0.5623351446188083;
    const h2 = 0.6931471805599453;
    assert.ok(Math.abs(s.entropies[0] - h1) < 1e-12);
    assert.ok(Math.abs(s.entropies[1] - h2) < 1e-12);
    assert.equal(s.entropies[2], 0);
    assert.ok(Math.abs(s.meanEntropy - (h1 + h2) / 3) < 1e-12);
    assert.equal(s.meanDistinct, (2 + 2 + 1) / 3);
    assert.equal(s.prompts, 3);
  });

  test('bad input names the field', () => {
    assert.throws(() => summarizeAnswerEntropy([['Answer: 1'], []]), /samplesPerPrompt\[1\]: got \[\], expected a non-empty list of replies/);
  });
});
