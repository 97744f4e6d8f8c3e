import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { forwardLogits } from '@posttrain/model';
import { computeBatchLogProbs, planLogProbBatches } from './batch-log-probs';
import { loadServedModel, type ServedModel } from './served-model';
import { ServingError } from './serving-error';
import { useCpuBackend, writeTinyModelDir } from './test-support';

let served: ServedModel;

before(async () => {
  await useCpuBackend();
  served = await loadServedModel(await writeTinyModelDir(3));
});
after(() => served.model.dispose());

/** Plain-loop reference in float64: one unpadded forward per pair, log-softmax and entropy by hand. */
function reference(prompt: number[], completion: number[], temperature: number): { lp: number[]; ent: number[] } {
  const seq = [...prompt, ...completion];
  const logits = forwardLogits(served.model, { inputIds: [seq] });
  const V = logits.shape[2];
  const all = logits.dataSync();
  logits.dispose();
  const lp: number[] = [];
  const ent: number[] = [];
  completion.forEach((id, j) => {
    const pos = prompt.length + j - 1;
    if (pos < 0) {
      lp.push(0);
      ent.push(0);
      return;
    }
    const z = Array.from(all.slice(pos * V, (pos + 1) * V), (x) => x / temperature);
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((s, x) => s + Math.exp(x - m), 0));
    lp.push(z[id] - lse);
    ent.push(-z.reduce((s, x) => s + Math.exp(x - lse) * (x - lse), 0));
  });
  return { lp, ent };
}

describe('computeBatchLogProbs', () => {
  const pairs = [
    { promptIds: [5, 6, 7], completionIds: [8, 9] },
    { promptIds: [40], completionIds: [41, 42, 43, 44, 45] },
    { promptIds: [], completionIds: [12, 13, 14] },
    { promptIds: [1, 2, 3, 4, 5, 6, 7, 8], completionIds: [90] },
  ];

  test('matches a plain per-pair reference (tol 1e-5), 0-padded rows, across forward-pass splits', async () => {
    for (const [maxBatchSequences, maxBatchTokens] of [[64, 16384], [1, 16384], [3, 12]]) {
      const out = await computeBatchLogProbs(served.model, pairs, { temperature: 0.7, returnEntropies: true, maxBatchSequences, maxBatchTokens });
      assert.deepEqual(out.lengths, [2, 5, 3, 1]);
      assert.equal(out.maxLength, 5);
      pairs.forEach((p, i) => {
        const ref = reference(p.promptIds, p.completionIds, 0.7);
        for (let j = 0; j < 5; j++) {
          const got = out.logprobs[i * 5 + j];
          const gotEnt = out.entropies![i * 5 + j];
          if (j >= p.completionIds.length) {
            assert.equal(got, 0);
            assert.equal(gotEnt, 0);
            continue;
          }
          assert.ok(Math.abs(got - ref.lp[j]) <= 1e-5, `pair ${i} token ${j}: ${got} vs ${ref.lp[j]}`);
          assert.ok(Math.abs(gotEnt - ref.ent[j]) <= 1e-4, `pair ${i} entropy ${j}: ${gotEnt} vs ${ref.ent[j]}`);
        }
      });
    }
  });

  test('plans forward passes within both budgets, in order', () => {
    // lengths 5, 6, 3, 9
    assert.deepEqual(planLogProbBatches(pairs, 64, 16384), [[0, 1, 2, 3]]);
    assert.deepEqual(planLogProbBatches(pairs, 2, 16384), [[0, 1], [2, 3]]);
    // 12 padded tokens: [0,1] pads to 2x6 = 12; adding 2 gives 3x6 = 18 > 12; [2] then [2,3] = 2x9 = 18 > 12
    assert.deepEqual(planLogProbBatches(pairs, 64, 12), [[0, 1], [2], [3]]);
  });

  test('rejects bad pairs naming the field; no tensors leak', async () => {
    const before = tf.memory().numTensors;
    await computeBatchLogProbs(served.model, pairs);
    assert.equal(tf.memory().numTensors, before);
    const bad: [Parameters<typeof computeBatchLogProbs>[1], string][] = [
      [[{ promptIds: [1], completionIds: [101] }], 'sequences[0].completion_ids[0]'],
      [[{ promptIds: [1], completionIds: [] }], 'sequences[0].completion_ids'],
      [[{ promptIds: new Array(90).fill(1), completionIds: new Array(7).fill(1) }], 'sequences[0]'],
    ];
    for (const [p, field] of bad) {
      await assert.rejects(computeBatchLogProbs(served.model, p), (e: unknown) => e instanceof ServingError && e.field === field, field);
    }
    await assert.rejects(computeBatchLogProbs(served.model, pairs, { temperature: 0 }), (e: unknown) => e instanceof ServingError && e.field === 'temperature');
  });
});
