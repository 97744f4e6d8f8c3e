import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseRewardSpec } from '@posttrain/rewards';
import { evaluateAnswers, type CompleteFn } from './evaluate-answers';
import type { AnswerItem } from './read-eval-data';

const items: AnswerItem[] = [
  { line: 1, prompt: [{ role: 'user', content: 'What is 316+316?' }], answer: '632' },
  { line: 2, prompt: [{ role: 'user', content: 'What is 174-96?' }], answer: '78' },
  { line: 3, prompt: 'What is 7+5?', answer: '12' },
  { line: 5, prompt: [{ role: 'user', content: '1+4=?' }], answer: '5' },
];
const replies: Record<string, string> = {
  'What is 316+316?': '6+6=12, 1+1+1=3, 3+3=6\nAnswer: 632', // right, well-formed
  'What is 174-96?': 'Answer: 79', // wrong, well-formed
  'What is 7+5?': 'the result is 12', // right number but no Answer: line -> 0 and 0
  '1+4=?': 'Answer: 5', // right, well-formed
};

function stub(calls: number[]): CompleteFn {
  return async (prompts) => {
    calls.push(prompts.length);
    return prompts.map((p) => replies[typeof p === 'string' ? p : p[0].content]);
  };
}

describe('evaluateAnswers', () => {
  test('scores stub replies with the task reward: accuracy, format rate and mean reward by hand', async () => {
    const calls: number[] = [];
    const ev = await evaluateAnswers(items, stub(calls), { batchSize: 3 });
    assert.deepEqual(calls, [3, 1], 'prompts go to the generator in batches of 3');
    // correct: 1, 0, 0, 1 -> 0.5; format: 1, 1, 0, 1 -> 0.75
    assert.equal(ev.n, 4);
    assert.equal(ev.accuracy, 0.5);
    assert.equal(ev.formatRate, 0.75);
    // reward = correct + 0.1 * format: 1.1, 0.1, 0, 1.1 -> mean 0.575 (float sums: tolerance 1e-12)
    assert.ok(Math.abs(ev.meanReward - 0.575) < 1e-12, `meanReward ${ev.meanReward}`);
    assert.deepEqual(ev.samples.map((s) => s.line), [1, 2, 3, 5]);
    assert.equal(ev.samples[1].completion, 'Answer: 79');
  });

  test('custom rules: accuracy and format are null when no component has those names; component means reported', async () => {
    const components = parseRewardSpec([{ name: 'last', rule: 'numeric_match', params: { extraction: { mode: 'last_number' } } }]);
    const ev = await evaluateAnswers(items, stub([]), { components });
    // last number of each reply: 632 (ok), 79 (no), 12 (ok), 5 (ok) -> 0.75
    assert.equal(ev.accuracy, null);
    assert.equal(ev.formatRate, null);
    assert.equal(ev.components.last, 0.75);
    assert.equal(ev.meanReward, 0.75);
  });

  test('a generator returning the wrong number of replies is an error naming the counts', async () => {
    await assert.rejects(evaluateAnswers(items, async () => ['x']), /returned 1 replies for 4 prompts/);
    await assert.rejects(evaluateAnswers([], stub([])), /items: got an empty list/);
  });
});
