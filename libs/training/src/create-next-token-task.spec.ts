import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { collateSft, packSft } from '@posttrain/data';
import type { SftBatch, SftExample } from '@posttrain/data';
import { createModelConfig, initModel } from '@posttrain/model';
import type { LlamaModel } from '@posttrain/model';
import { nextTokenBatchLoss } from './create-next-token-task';
import { useCpuBackend } from './test-support';

// Float32 losses over a handful of tokens: packed and unpacked agree within 1e-5 absolute.
const TOL = 1e-5;

// Loss masks as the data layer builds them (0 on prompt tokens); packSft also zeroes each example's first token.
const examples: SftExample[] = [
  { line: 1, inputIds: [4, 9, 1, 22, 7], lossMask: [0, 0, 1, 1, 1] },
  { line: 2, inputIds: [7, 3, 3], lossMask: [0, 1, 1] },
  { line: 3, inputIds: [30, 2, 11, 5, 19, 6], lossMask: [0, 0, 0, 1, 1, 1] },
  { line: 4, inputIds: [6, 6, 14, 2], lossMask: [1, 1, 1, 1] },
];
const PAD = 0;

function tinyModel(): LlamaModel {
  // initializer_range 0.3 (not 0.02) so that attention across examples visibly changes the loss.
  const config = { ...createModelConfig({ modelType: 'qwen2', vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2 }), initializerRange: 0.3 };
  return initModel(config, { seed: 11 });
}

/** Loss (plain number) and counted tokens of one batch. */
function lossOf(model: LlamaModel, batch: SftBatch): { loss: number; tokens: number } {
  const out = nextTokenBatchLoss(model, batch);
  const loss = out.loss.dataSync()[0];
  out.loss.dispose();
  return { loss, tokens: out.metrics['sft/num_tokens'] };
}

before(async () => {
  await useCpuBackend();
});

describe('nextTokenBatchLoss on packed rows', () => {
  test(`the packed loss is the token-weighted mean of the examples' losses alone (tol ${TOL}), and so is its gradient`, () => {
    const model = tinyModel();
    const packed = packSft([[examples[0], examples[1], examples[2]], [examples[3]]], 16, PAD);
    const alone = examples.map((e) => collateSft([e], { padTokenId: PAD }));

    // Token-weighted mean: Σ_i n_i * loss_i / Σ_i n_i, with n_i the counted tokens of example i.
    const per = alone.map((b) => lossOf(model, b));
    const total = per.reduce((a, p) => a + p.tokens, 0);
    const expected = per.reduce((a, p) => a + p.loss * p.tokens, 0) / total;
    const got = lossOf(model, packed);
    assert.equal(got.tokens, total);
    assert.ok(Math.abs(got.loss - expected) <= TOL, `packed loss ${got.loss} vs token-weighted mean ${expected}`);

    // The test can fail: without segment ids, examples 2 and 3 of row 0 attend to the ones before them.
    const leaky = lossOf(model, { ...packed, segmentIds: packed.segmentIds.map((s) => (s > 0 ? 1 : 0)) });
    assert.ok(Math.abs(leaky.loss - expected) > 1e-3, `cross-example attention should change the loss: ${leaky.loss} vs ${expected}`);

    // The training step sees the same gradient: ∇ packed = Σ_i (n_i / N) ∇ loss_i.
    const vars = model.trainableVariables();
    const gradsOf = (b: SftBatch) => {
      const { value, grads } = tf.variableGrads(() => nextTokenBatchLoss(model, b).loss, vars);
      value.dispose();
      return grads;
    };
    const gPacked = gradsOf(packed);
    const gAlone = alone.map(gradsOf);
    let worst = 0;
    for (const name of Object.keys(gPacked)) {
      const p = gPacked[name].dataSync();
      const parts = gAlone.map((g) => g[name].dataSync());
      for (let j = 0; j < p.length; j++) {
        let ref = 0;
        parts.forEach((q, i) => (ref += (per[i].tokens / total) * q[j]));
        worst = Math.max(worst, Math.abs(p[j] - ref));
      }
    }
    tf.dispose([gPacked, ...gAlone]);
    assert.ok(worst <= TOL, `largest gradient difference ${worst}`);
    model.dispose();
  });

  test('no tensor leaks in a packed training step', () => {
    const model = tinyModel();
    const packed = packSft([[examples[0], examples[1]], [examples[2], examples[3]]], 11, PAD);
    const step = () => {
      const { value, grads } = tf.variableGrads(() => nextTokenBatchLoss(model, packed, 5).loss, model.trainableVariables());
      tf.dispose([value, grads]);
    };
    step();
    const before = tf.memory().numTensors;
    step();
    nextTokenBatchLoss(model, packed).loss.dispose();
    assert.equal(tf.memory().numTensors, before);
    model.dispose();
  });
});
