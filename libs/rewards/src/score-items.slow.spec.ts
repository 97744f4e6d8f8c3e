// Throughput of rule scoring on a trainer-sized batch. Run alone:
//   node --import tsx --test libs/rewards/src/score-items.slow.spec.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRewardSpec } from './parse-reward-spec';
import { scoreItems } from './score-items';
import { item } from './test-support';

test('1024 items x 5 rule components score in well under 1 ms per item', async (t) => {
  const comps = parseRewardSpec([
    { name: 'correct', rule: 'numeric_match', params: { extraction: { mode: 'last_number' } } },
    { name: 'exact', rule: 'exact_match', params: { extraction: { mode: 'boxed' } } },
    { name: 'format', rule: 'format', params: { required_tags: ['think', 'answer'] } },
    { name: 'polite', rule: 'regex', params: { pattern: 'sorry|apolog', flags: 'i', negate: true } },
    { name: 'len', rule: 'length_penalty', params: { target_length: 200, penalty_per_unit: 0.001, unit: 'characters' } },
  ]);
  const text = `<think>${'Let me add 123 and 456 step by step. '.repeat(20)}</think><answer>\\boxed{579}</answer> so 579`;
  const items = Array.from({ length: 1024 }, (_, i) => item(text, { id: String(i), groundTruth: '579' }));
  const [first] = await scoreItems(items, comps);
  // 760 + 30 = 790 chars -> 590 over * 0.001 = 0.59 penalty; the other four components score 1.
  assert.equal(text.length, 790);
  assert.deepEqual(first.components.map((c) => c.value), [1, 1, 1, 1, -0.59]);
  const reps = 10;
  const started = process.hrtime.bigint();
  for (let r = 0; r < reps; r++) await scoreItems(items, comps);
  const msPerBatch = Number(process.hrtime.bigint() - started) / 1e6 / reps;
  t.diagnostic(`${msPerBatch.toFixed(1)} ms per batch of 1024, ${((msPerBatch * 1000) / 1024).toFixed(1)} us per item`);
  assert.ok(msPerBatch < 1024, `${msPerBatch} ms per batch`);
});
