import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createModelConfig, modelConfigToJson, parseModelConfig } from './model-config';
import { assignHfTensors, cloneModel, initModel, modelFromHfTensors, modelToHfTensors } from './llama-model';
import { applyLora } from './lora';
import { sequenceTokenLogProbs } from './token-log-probs';
import { makeTestWeights } from './test-reference';

const config = createModelConfig({ modelType: 'qwen2', vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2 });
const heads = { lm: true, score: false };
const ids = [[2, 9, 4, 17, 30]];

before(async () => {
  await tf.setBackend('cpu');
});

describe('LlamaModel', () => {
  test('parameter count by hand (qwen2: q/k/v biases, GQA)', () => {
    // embed 32*16; per layer q 16*16+16, k 8*16+8, v 8*16+8, o 16*16, mlp 3*16*24, norms 2*16; final norm 16; lm_head 32*16
    const perLayer = 272 + 136 + 136 + 256 + 1152 + 32;
    const model = initModel(config, { seed: 1 });
    assert.equal(model.parameterCount(), 512 + 2 * perLayer + 16 + 512);
    assert.equal(model.parameterCount(), [...model.weights.values()].reduce((a, v) => a + v.size, 0));
    model.dispose();
  });

  test('parameter count by hand (qwen3: q_norm and k_norm of head_dim per layer, no biases)', () => {
    const qwen3 = createModelConfig({ modelType: 'qwen3', vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2 });
    assert.equal(qwen3.architecture, 'Qwen3ForCausalLM');
    // per layer q 16*16, k 8*16, v 8*16, o 16*16, mlp 3*16*24, norms 2*16, q_norm + k_norm 2*4 (head_dim 4)
    const perLayer = 256 + 128 + 128 + 256 + 1152 + 32 + 8;
    const model = initModel(qwen3, { seed: 1 });
    assert.equal(model.parameterCount(), 512 + 2 * perLayer + 16 + 512);
    assert.equal(model.parameterCount(), [...model.weights.values()].reduce((a, v) => a + v.size, 0));
    assert.deepEqual(model.weight('model.layers.1.self_attn.k_norm.weight').shape, [4]);
    assert.deepEqual([...model.weight('model.layers.0.self_attn.q_norm.weight').dataSync()], [1, 1, 1, 1]); // identity at init, as in transformers
    model.dispose();
  });

  test('config.json round-trips through modelConfigToJson / parseModelConfig', () => {
    for (const c of [
      config,
      createModelConfig({ modelType: 'llama', attentionBias: true, tieWordEmbeddings: true }),
      createModelConfig({ modelType: 'mistral', task: 'sequence-classification' }),
      createModelConfig({ modelType: 'qwen3', tieWordEmbeddings: true }),
      createModelConfig({ modelType: 'qwen3', task: 'sequence-classification', attentionBias: true }),
    ]) {
      assert.deepEqual(parseModelConfig(JSON.parse(JSON.stringify(modelConfigToJson(c)))), c);
    }
  });

  test('cloneModel is independent of the original (weights and adapters)', () => {
    const model = modelFromHfTensors(config, heads, makeTestWeights(config, heads, 5), 'test');
    applyLora(model, { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'] }, { seed: 1 });
    const before = sequenceTokenLogProbs(model, ids);
    const copy = cloneModel(model, { trainable: false });
    assert.deepEqual(sequenceTokenLogProbs(copy, ids), before);
    const q = model.weight('model.layers.0.self_attn.q_proj.weight');
    q.assign(tf.mul(q, 2));
    assert.deepEqual(sequenceTokenLogProbs(copy, ids), before, 'changing the original leaves the copy');
    model.dispose();
    assert.deepEqual(sequenceTokenLogProbs(copy, ids), before, 'disposing the original leaves the copy');
    assert.equal(copy.trainableVariables().every((v) => !v.trainable), true);
    copy.dispose();
  });

  test('assignHfTensors swaps weights in place; a bad push changes nothing', () => {
    const a = modelFromHfTensors(config, heads, makeTestWeights(config, heads, 1), 'a');
    const b = modelFromHfTensors(config, heads, makeTestWeights(config, heads, 2), 'b');
    const bBefore = sequenceTokenLogProbs(b, ids);
    const pushed = modelToHfTensors(a);
    const bad = new Map(pushed);
    bad.set('model.norm.weight', { shape: [15], data: new Float32Array(15) });
    assert.throws(() => assignHfTensors(b, bad, 'push v2'), /push v2: tensor model\.norm\.weight has shape \[15\], expected \[16\]/);
    assert.deepEqual(sequenceTokenLogProbs(b, ids), bBefore);
    const n = tf.memory().numTensors;
    assignHfTensors(b, pushed, 'push v3');
    assert.equal(tf.memory().numTensors, n, 'old weights are released');
    assert.deepEqual(sequenceTokenLogProbs(b, ids), sequenceTokenLogProbs(a, ids));
    a.dispose();
    b.dispose();
  });
});
