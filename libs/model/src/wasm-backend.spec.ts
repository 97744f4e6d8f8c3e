// The same checks as on cpu, on the project's default CPU backend (wasm with @posttrain/backend's kernel patches).
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, nativeKernelsActive, setNativeKernelsEnabled } from '@posttrain/backend';
import { createModelConfig } from './model-config';
import { modelFromHfTensors } from './llama-model';
import type { LlamaModel } from './llama-model';
import { sequenceTokenLogProbs, tokenLogProbs } from './token-log-probs';
import { generate } from './generate';
import { makeTestWeights, referenceLogProbs } from './test-reference';
import type { HfWeights } from './test-reference';
import { checkGradients, GRADIENT_PROBES } from './gradient-check';

const config = createModelConfig({ modelType: 'qwen2', vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 64 });
const heads = { lm: true, score: false };
let model: LlamaModel;
let w: HfWeights;

before(async () => {
  await initBackend({ backend: 'wasm', logger: { info: () => {} } });
  w = makeTestWeights(config, heads, 41);
  model = modelFromHfTensors(config, heads, w, 'test');
});

describe('on wasm', () => {
  test('log-probs match the reference within 1e-4; gradients match finite differences', () => {
    assert.equal(tf.getBackend(), 'wasm');
    const ids = [5, 1, 30, 22, 8, 8, 16];
    const [lp] = sequenceTokenLogProbs(model, [ids], { temperature: 0.8 });
    referenceLogProbs(config, w, ids, 0.8).forEach((x, i) => assert.ok(Math.abs(lp[i] - x) <= 1e-4, `token ${i + 1}: ${lp[i]} vs ${x}`));
    checkGradients(model, w, ids, GRADIENT_PROBES);
  });

  test('KV-cache generation equals recomputation; no leaks across forward, backward, generate', () => {
    const prompts = [[3, 4, 5, 6], [7]];
    const a: Float32Array[] = [];
    const b: Float32Array[] = [];
    const x = generate(model, prompts, { maxNewTokens: 5, temperature: 0.9, seed: 2, onStepLogits: (_, l) => a.push(l.slice()) });
    const y = generate(model, prompts, { maxNewTokens: 5, temperature: 0.9, seed: 2, useCache: false, onStepLogits: (_, l) => b.push(l.slice()) });
    assert.deepEqual(x.map((c) => [c.tokens, c.finishReason]), y.map((c) => [c.tokens, c.finishReason]));
    a.forEach((l, s) => l.forEach((v, i) => assert.ok(Math.abs(v - b[s][i]) <= 1e-4)));
    const batch = { inputIds: [[1, 2, 3], [0, 4, 5]], attentionMask: [[1, 1, 1], [0, 1, 1]] };
    const round = () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tokenLogProbs(model, batch)) as tf.Scalar, model.trainableVariables());
      tf.dispose([value, ...Object.values(grads)]);
      generate(model, prompts, { maxNewTokens: 3, seed: 1 });
    };
    round();
    const n = tf.memory().numTensors;
    round();
    round();
    assert.equal(tf.memory().numTensors, n);
  });

  // Skipped where the native addon is absent (POSTTRAIN_NATIVE=0, not built): then both runs are plain wasm.
  test('native kernels and plain wasm agree on log-probs, gradients and KV-cache decoding (tol 1e-4)', (t) => {
    if (!nativeKernelsActive()) return t.skip('native kernels not active');
    const batch = { inputIds: [[1, 2, 3, 9, 4], [0, 4, 5, 6, 7]], attentionMask: [[1, 1, 1, 1, 1], [0, 1, 1, 1, 1]] };
    const run = () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tokenLogProbs(model, batch)) as tf.Scalar, model.trainableVariables());
      const out = { loss: value.dataSync()[0], grads: Object.keys(grads).sort().map((k) => grads[k].dataSync() as Float32Array) };
      tf.dispose([value, ...Object.values(grads)]);
      const logits: Float32Array[] = [];
      generate(model, [[3, 4, 5, 6], [7]], { maxNewTokens: 4, temperature: 0, onStepLogits: (_, l) => logits.push(l.slice()) });
      return { ...out, logits };
    };
    const native = run();
    setNativeKernelsEnabled(false);
    let plain;
    try {
      assert.equal(nativeKernelsActive(), false);
      plain = run();
    } finally {
      setNativeKernelsEnabled(true);
    }
    assert.ok(Math.abs(native.loss - plain.loss) <= 1e-4 * Math.max(1, Math.abs(plain.loss)), `${native.loss} vs ${plain.loss}`);
    native.grads.forEach((g, i) => g.forEach((x, j) => assert.ok(Math.abs(x - plain.grads[i][j]) <= 1e-4, `grad ${i}[${j}]: ${x} vs ${plain.grads[i][j]}`)));
    native.logits.forEach((l, s) => l.forEach((x, i) => assert.ok(Math.abs(x - plain.logits[s][i]) <= 1e-4, `step ${s} logit ${i}`)));
  });
});
