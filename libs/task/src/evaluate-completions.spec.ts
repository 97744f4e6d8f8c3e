import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateCompletions } from './evaluate-completions';
import { generateTaskData, type PreferenceRecord } from './generate-task-data';
import { taskRewardComponents, TASK_REWARD_SPEC } from './task-reward';

describe('evaluateCompletions', () => {
  test('accuracy, format rate and mean reward, worked by hand', async () => {
    const ev = await evaluateCompletions(
      [
        '7+5=12, 4+8+1=13, 3+2+1=6\nAnswer: 632', // right, well-formed: 1 + 0.1
        'Answer: 631', // wrong, well-formed: 0 + 0.1
        'the sum is 632', // no answer line: the number alone does not count: 0 + 0
        'Answer: 632\nthanks', // right answer line, but not last: 1 + 0
        'Answer: 0632', // 0632 parses as 632: 1 + 0.1
      ],
      ['632', '632', '632', '632', '632'],
    );
    assert.deepEqual(ev.correct, [1, 0, 0, 1, 1]);
    assert.deepEqual(ev.formatted, [1, 1, 0, 0, 1]);
    assert.equal(ev.n, 5);
    assert.equal(ev.accuracy, 3 / 5);
    assert.equal(ev.formatRate, 3 / 5);
    // (1.1 + 0.1 + 0 + 1 + 1.1) / 5 = 0.66; sums of 0.1s are inexact in binary, hence the tolerance.
    assert.ok(Math.abs(ev.meanReward - 0.66) < 1e-12, String(ev.meanReward));
  });

  test('agrees with the generated data: correctness pairs chosen right and rejected wrong, style pairs both right, all well-formed', async () => {
    const data = generateTaskData({ seed: 1, sftSizes: [1], corpusSize: 1, preferenceSize: 1, promptsSize: 1, evalSize: 200 });
    const stylePairs = data.files.find((f) => f.name === 'preference-eval.jsonl')!.records as PreferenceRecord[];
    const pairs = data.files.find((f) => f.name === 'preference-correct-eval.jsonl')!.records as PreferenceRecord[];
    const answers = data.files.find((f) => f.name === 'prompts-eval.jsonl')!.records.map((r) => (r as { answer: string }).answer);
    const chosen = await evaluateCompletions(pairs.map((p) => p.chosen[0].content), answers);
    const rejected = await evaluateCompletions(pairs.map((p) => p.rejected[0].content), answers);
    assert.deepEqual([chosen.accuracy, chosen.formatRate], [1, 1]);
    assert.deepEqual([rejected.accuracy, rejected.formatRate], [0, 1]);
    for (const side of ['chosen', 'rejected'] as const) {
      const ev = await evaluateCompletions(stylePairs.map((p) => p[side][0].content), answers);
      assert.deepEqual([ev.accuracy, ev.formatRate], [1, 1], side);
    }
  });

  test('bad input names the field', async () => {
    await assert.rejects(evaluateCompletions([], []), /completions: got \[\], expected a non-empty list/);
    await assert.rejects(evaluateCompletions(['a', 'b'], ['1']), /answers: got 1 answers, expected one per completion \(2\)/);
    await assert.rejects(evaluateCompletions(['a'], [' ']), /answers\[0\]: got " ", expected a non-empty string/);
  });

  test('the reward spec parses into the two named components, and the spec cannot be changed through them', () => {
    const components = taskRewardComponents();
    assert.deepEqual(components.map((c) => [c.name, c.weight, c.rule?.$case]), [['correct', 1, 'numericMatch'], ['format', 0.1, 'format']]);
    components[0].weight = 5;
    assert.equal(taskRewardComponents()[0].weight, 1);
    assert.equal(TASK_REWARD_SPEC[0].weight, 1);
  });
});
