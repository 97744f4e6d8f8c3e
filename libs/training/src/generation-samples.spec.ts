import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_GENERATION_SAMPLES, MAX_SAMPLE_CHARS, boundGenerationSamples, spreadIndices, truncateSampleText } from './generation-samples';

describe('generation samples', () => {
  test('texts over the limit are cut to it, ending in "...", never inside a surrogate pair', () => {
    assert.equal(truncateSampleText('abc', 5), 'abc');
    assert.equal(truncateSampleText('abcdef', 5), 'ab...');
    // 'a' then U+1F600 (two code units): a cut after 'a' + the high surrogate drops the half pair.
    assert.equal(truncateSampleText('a\u{1F600}bcdef', 5), 'a...');
    assert.equal(truncateSampleText('x'.repeat(MAX_SAMPLE_CHARS + 1)).length, MAX_SAMPLE_CHARS);
  });

  test('at most MAX_GENERATION_SAMPLES samples are kept, the first ones', () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ prompt: `p${i}`, completion: 'c'.repeat(600), reward: i }));
    const kept = boundGenerationSamples(many);
    assert.equal(kept.length, MAX_GENERATION_SAMPLES);
    assert.deepEqual(kept.map((s) => s.reward), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(kept[0].completion.length, MAX_SAMPLE_CHARS);
  });

  test('spreadIndices picks evenly over the batch (one per group of consecutive rollouts)', () => {
    assert.deepEqual(spreadIndices(16, 4), [0, 4, 8, 12]);
    assert.deepEqual(spreadIndices(3, 4), [0, 1, 2]);
    assert.deepEqual(spreadIndices(0, 4), []);
  });
});
