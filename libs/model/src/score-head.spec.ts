import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createModelConfig } from './model-config';
import { modelFromHfTensors } from './llama-model';
import { sequenceScores, tokenValues, withScoreHead } from './score-head';
import { loadModel, saveModel } from './model-checkpoint';
import { sequenceTokenLogProbs } from './token-log-probs';
import { makeTestWeights, referenceScores } from './test-reference';

const config = createModelConfig({ modelType: 'llama', vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, task: 'sequence-classification' });
const heads = { lm: false, score: true };
let root = '';

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'model-score-'));
});
after(async () => rm(root, { recursive: true, force: true }));

describe('scalar head', () => {
  test('per-token values and last-token scores match the reference (tol 1e-4), with padding', () => {
    const w = makeTestWeights(config, heads, 23);
    const model = modelFromHfTensors(config, heads, w, 'test');
    const a = [5, 6, 7, 8];
    const b = [9, 1];
    const batch = { inputIds: [a, [0, 0, ...b], [...b, 0, 0]], attentionMask: [[1, 1, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0]] };
    const refA = referenceScores(config, w, a);
    const refB = referenceScores(config, w, b);
    const s = sequenceScores(model, batch);
    const scores = Array.from(s.dataSync());
    s.dispose();
    [refA[3], refB[1], refB[1]].forEach((want, i) => assert.ok(Math.abs(scores[i] - want) <= 1e-4, `row ${i}: ${scores[i]} vs ${want}`));
    const v = tokenValues(model, batch);
    const values = v.arraySync();
    v.dispose();
    refA.forEach((want, t) => assert.ok(Math.abs(values[0][t] - want) <= 1e-4));
    assert.ok(Math.abs(values[1][3] - refB[1]) <= 1e-4 && values[1][0] === 0 && Math.abs(values[2][0] - refB[0]) <= 1e-4);
    assert.throws(() => tokenLogProbsOf(model), /no LM head/);
    model.dispose();
  });

  test('a reward model built from a causal LM saves and loads as *ForSequenceClassification', async () => {
    const lmConfig = createModelConfig({ vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2 });
    const lm = modelFromHfTensors(lmConfig, { lm: true, score: false }, makeTestWeights(lmConfig, { lm: true, score: false }, 4), 'test');
    const rm = withScoreHead(lm, { seed: 1 });
    assert.equal(rm.config.architecture, 'LlamaForSequenceClassification');
    assert.ok(!rm.weights.has('lm_head.weight'));
    const batch = { inputIds: [[1, 2, 3]] };
    const s1 = sequenceScores(rm, batch);
    await saveModel(rm, join(root, 'rm'));
    const back = await loadModel(join(root, 'rm'));
    assert.deepEqual(back.heads, { lm: false, score: true });
    const s2 = sequenceScores(back, batch);
    assert.deepEqual(Array.from(s2.dataSync()), Array.from(s1.dataSync()));
    tf.dispose([s1, s2]);
    // A policy with a value head keeps its LM head and round-trips both.
    const pv = withScoreHead(lm, { seed: 2, keepLmHead: true });
    await saveModel(pv, join(root, 'pv'));
    const pvBack = await loadModel(join(root, 'pv'));
    assert.deepEqual(pvBack.heads, { lm: true, score: true });
    assert.deepEqual(sequenceTokenLogProbs(pvBack, [[1, 2, 3]]), sequenceTokenLogProbs(lm, [[1, 2, 3]]));
    for (const m of [lm, rm, back, pv, pvBack]) m.dispose();
  });

  test('no tensor leaks across forward and backward through the score head', () => {
    const model = modelFromHfTensors(config, heads, makeTestWeights(config, heads, 3), 'test');
    const batch = { inputIds: [[1, 2, 3], [0, 4, 5]], attentionMask: [[1, 1, 1], [0, 1, 1]] };
    const step = () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(sequenceScores(model, batch)) as tf.Scalar, model.trainableVariables());
      value.dispose();
      tf.dispose(grads);
      tokenValues(model, batch).dispose();
    };
    step();
    const n = tf.memory().numTensors;
    step();
    step();
    assert.equal(tf.memory().numTensors, n);
    model.dispose();
  });
});

function tokenLogProbsOf(model: Parameters<typeof sequenceTokenLogProbs>[0]) {
  return sequenceTokenLogProbs(model, [[1, 2]]);
}
