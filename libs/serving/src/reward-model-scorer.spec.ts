import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tokenValues } from '@posttrain/model';
import { RewardValidationError, scoreItems, type RewardModelFn } from '@posttrain/rewards';
import { createRewardModelFn } from './reward-model-scorer';
import { loadServedModel, type ServedModel } from './served-model';
import { useCpuBackend, writeTinyModelDir } from './test-support';

let rm: ServedModel;

before(async () => {
  await useCpuBackend();
  rm = await loadServedModel(await writeTinyModelDir(5, 'sequence-classification'));
});
after(() => rm.model.dispose());

/** The scalar head at the last token of one unpadded sequence, read off the per-position values. */
function lastValue(ids: number[]): number {
  const t = tokenValues(rm.model, { inputIds: [ids] });
  const v = t.dataSync()[ids.length - 1];
  t.dispose();
  return v;
}

type ScoredItem = Parameters<RewardModelFn>[0][number];

/** An item as @posttrain/rewards scores it, unset fields empty (libs/serving does not import the wire types). */
function scoreItem(fields: Pick<ScoredItem, 'id' | 'completion'> & Partial<ScoredItem>): ScoredItem {
  return { prompt: '', promptMessages: [], completionTokenIds: [], ...fields };
}

describe('createRewardModelFn', () => {
  const items = [
    scoreItem({ id: 'a', prompt: '12+7=', completion: '19' }),
    scoreItem({ id: 'b', promptMessages: [{ role: 'user', content: 'hi' }], completion: 'hello there' }),
    scoreItem({ id: 'c', prompt: 'x', completion: 'a much longer completion to force padding' }),
  ];

  test('scores equal the scalar head at the last token of each rendered item (tol 1e-5), across batch sizes', async () => {
    const tok = rm.tokenizer!;
    const expected = [
      lastValue(tok.encode('12+7=19')),
      lastValue(tok.encode('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello there<|im_end|>\n', { addSpecialTokens: false })),
      lastValue(tok.encode('xa much longer completion to force padding')),
    ];
    for (const batchSize of [1, 2, 32]) {
      const got = await createRewardModelFn(rm, { batchSize })(items);
      got.forEach((g, i) => assert.ok(Math.abs(g - expected[i]) <= 1e-5, `item ${i} batch ${batchSize}: ${g} vs ${expected[i]}`));
    }
  });

  test('through scoreItems: (raw - shift) * scale, weighted', async () => {
    const fn = createRewardModelFn(rm);
    const raw = await fn(items.slice(0, 1));
    const [score] = await scoreItems(items.slice(0, 1), [{ name: 'rm', weight: 2, rule: { $case: 'rewardModel', value: { expectedModelId: '', shift: 0.5, scale: 3 } } }], { rewardModel: fn });
    assert.ok(Math.abs(score.components[0].value - (raw[0] - 0.5) * 3) <= 1e-9);
    assert.ok(Math.abs(score.reward - 2 * (raw[0] - 0.5) * 3) <= 1e-9);
  });

  test("config.json's normalize_reward serves (raw - mean) / std (tol 1e-6); mean and std without it change nothing", async () => {
    const raw = await createRewardModelFn(rm)(items);
    for (const normalize of [true, false]) {
      const dir = await writeTinyModelDir(5, 'sequence-classification');
      const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
      await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, normalize_reward: normalize, mean: 0.25, std: 2.5 }));
      const served = await loadServedModel(dir);
      try {
        assert.deepEqual(served.model.config.rewardStats, { mean: 0.25, std: 2.5 });
        const got = await createRewardModelFn(served)(items);
        got.forEach((g, i) => {
          const want = normalize ? (raw[i] - 0.25) / 2.5 : raw[i];
          assert.ok(Math.abs(g - want) <= 1e-6, `normalize_reward ${normalize}, item ${i}: ${g} vs ${want}`);
        });
      } finally {
        served.model.dispose();
      }
    }
  });

  test('an item longer than the context is refused naming it; a causal LM is not a reward model', async () => {
    const long = scoreItem({ id: 'z', prompt: 'p', completion: 'y'.repeat(200) });
    await assert.rejects(createRewardModelFn(rm)([items[0], long]), (e: unknown) => e instanceof RewardValidationError && e.field === 'items[1]');
    const lm = await loadServedModel(await writeTinyModelDir(1));
    assert.throws(() => createRewardModelFn(lm), /no score head/);
    lm.model.dispose();
  });
});
