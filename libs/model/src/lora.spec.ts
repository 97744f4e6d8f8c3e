import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { readSafetensorsFile } from '@posttrain/safetensors';
import { createModelConfig } from './model-config';
import { modelFromHfTensors } from './llama-model';
import type { LlamaModel } from './llama-model';
import { applyLora, loadLoraAdapter, mergeLora, saveLoraAdapter } from './lora';
import { sequenceTokenLogProbs, tokenLogProbs } from './token-log-probs';
import { sequenceScores, withScoreHead } from './score-head';
import { makeTestWeights, referenceLogProbs } from './test-reference';
import type { HfWeights } from './test-reference';

const config = createModelConfig({ modelType: 'qwen2', vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2 });
const heads = { lm: true, score: false };
const settings = { r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj', 'down_proj'] };
const ids = [4, 11, 19, 2, 27, 6];
let root = '';
let w: HfWeights;

before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'model-lora-'));
  w = makeTestWeights(config, heads, 31);
});
after(async () => rm(root, { recursive: true, force: true }));

/** Gives every lora_B deterministic non-zero values so the adapters matter. */
function perturbB(model: LlamaModel): void {
  let k = 0;
  for (const ad of model.lora!.adapters.values()) {
    const n = ad.b.size;
    ad.b.assign(tf.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + k) * 0.2), ad.b.shape));
    k++;
  }
}

describe('LoRA', () => {
  test('a fresh adapter leaves log-probs unchanged; only adapters are trainable', () => {
    const model = modelFromHfTensors(config, heads, w, 'test');
    const [before] = sequenceTokenLogProbs(model, [ids]);
    applyLora(model, settings, { seed: 1 });
    assert.deepEqual(sequenceTokenLogProbs(model, [ids]), [before]);
    const trainable = model.trainableVariables();
    assert.equal(trainable.length, 2 * 2 * 3); // 2 layers x 3 targets x (A, B)
    // A: U(-1/sqrt(in), 1/sqrt(in)); q_proj in = 16 -> |a| <= 0.25.
    const a = model.lora!.adapters.get('model.layers.0.self_attn.q_proj')!.a;
    assert.deepEqual(a.shape, [16, 4]);
    assert.ok(Math.max(...Array.from(a.dataSync()).map(Math.abs)) <= 0.25);
    // Gradients flow to every adapter variable; the base weights are not among the trainables and stay as they were.
    const baseBefore = Array.from(model.weight('model.layers.0.self_attn.q_proj.weight').dataSync());
    const { value, grads } = tf.variableGrads(() => tf.neg(tf.sum(tokenLogProbs(model, { inputIds: [ids] }))) as tf.Scalar, trainable);
    assert.equal(Object.keys(grads).length, trainable.length);
    const gB = grads[model.lora!.adapters.get('model.layers.0.self_attn.q_proj')!.b.name];
    assert.ok(Math.max(...Array.from(gB.dataSync()).map(Math.abs)) > 0, 'lora_B gets a gradient');
    tf.dispose([value, ...Object.values(grads)]);
    assert.deepEqual(Array.from(model.weight('model.layers.0.self_attn.q_proj.weight').dataSync()), baseBefore);
    model.dispose();
  });

  test('adapted forward matches the reference with W + (alpha/r)·BA (tol 1e-4), and merging gives the same', () => {
    const model = modelFromHfTensors(config, heads, w, 'test');
    applyLora(model, settings, { seed: 2 });
    perturbB(model);
    // Reference: fold the adapters into HF-layout weights by plain loops: W_hf[o][i] += s * Σ_k B_hf[o][k] A_hf[k][i],
    // where ours are A [in, r] (A_hf[k][i] = A[i][k]) and B [r, out] (B_hf[o][k] = B[k][o]).
    const merged: HfWeights = new Map([...w].map(([n, t]) => [n, { shape: t.shape, data: t.data.slice() }]));
    const s = settings.alpha / settings.r;
    for (const [prefix, ad] of model.lora!.adapters) {
      const A = ad.a.arraySync() as number[][];
      const B = ad.b.arraySync() as number[][];
      const W = merged.get(`${prefix}.weight`)!;
      const [outDim, inDim] = W.shape;
      for (let o = 0; o < outDim; o++) {
        for (let i = 0; i < inDim; i++) {
          let acc = 0;
          for (let k = 0; k < settings.r; k++) acc += B[k][o] * A[i][k];
          W.data[o * inDim + i] += s * acc;
        }
      }
    }
    const ref = referenceLogProbs(config, merged, ids);
    const [withAdapter] = sequenceTokenLogProbs(model, [ids]);
    withAdapter.forEach((x, i) => assert.ok(Math.abs(x - ref[i]) <= 1e-4, `adapter token ${i}: ${x} vs ${ref[i]}`));
    const [base] = sequenceTokenLogProbs(modelFromHfTensors(config, heads, w, 'base'), [ids]);
    assert.ok(base.some((x, i) => Math.abs(x - withAdapter[i]) > 1e-3), 'the adapter changes the output');
    mergeLora(model);
    assert.equal(model.lora, null);
    const [afterMerge] = sequenceTokenLogProbs(model, [ids]);
    afterMerge.forEach((x, i) => assert.ok(Math.abs(x - ref[i]) <= 1e-4, `merged token ${i}: ${x} vs ${ref[i]}`));
    model.dispose();
  });

  test('PEFT save/load: names, shapes, config; bitwise-equal log-probs after reload', async () => {
    const model = modelFromHfTensors(config, heads, w, 'test');
    applyLora(model, settings, { seed: 3 });
    perturbB(model);
    const [before] = sequenceTokenLogProbs(model, [ids]);
    const dir = join(root, 'adapter');
    await saveLoraAdapter(model, dir, { baseModel: 'tiny' });
    const cfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.r, 4);
    assert.equal(cfg.lora_alpha, 8);
    assert.deepEqual(cfg.target_modules, ['q_proj', 'v_proj', 'down_proj']);
    const { tensors } = await readSafetensorsFile(join(dir, 'adapter_model.safetensors'));
    assert.deepEqual(tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!.shape, [4, 16]);
    assert.deepEqual(tensors.get('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight')!.shape, [16, 4]);
    assert.deepEqual(tensors.get('base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight')!.shape, [8, 4]);
    assert.equal(tensors.size, 12);
    const fresh = modelFromHfTensors(config, heads, w, 'fresh');
    await loadLoraAdapter(fresh, dir);
    assert.deepEqual(sequenceTokenLogProbs(fresh, [ids]), [before]);
    // Unsupported options are named.
    await writeFile(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, use_dora: true }));
    const other = modelFromHfTensors(config, heads, w, 'other');
    await assert.rejects(loadLoraAdapter(other, dir), /"use_dora" is true; expected false/);
    await writeFile(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, target_modules: ['q_proj', 'x_proj'] }));
    await assert.rejects(loadLoraAdapter(other, dir), /"targetModules" contains "x_proj"/);
    for (const m of [model, fresh, other]) m.dispose();
  });

  test('dropout applies only with a training seed, reproducibly', () => {
    const model = modelFromHfTensors(config, heads, w, 'test');
    applyLora(model, { ...settings, dropout: 0.5 }, { seed: 4 });
    perturbB(model);
    const run = (seed?: number) => {
      const t = tokenLogProbs(model, { inputIds: [ids] }, { dropoutSeed: seed });
      const v = Array.from(t.dataSync());
      t.dispose();
      return v;
    };
    assert.deepEqual(run(), run());
    assert.deepEqual(run(9), run(9));
    assert.notDeepEqual(run(9), run());
    model.dispose();
  });

  test('a reward model trains and saves its score head with the adapters (PEFT modules_to_save)', async () => {
    const base = modelFromHfTensors(config, heads, w, 'test');
    const rm = withScoreHead(base, { seed: 5 });
    base.dispose();
    applyLora(rm, { r: 2, alpha: 2, dropout: 0, targetModules: ['q_proj'] }, { seed: 6 });
    assert.deepEqual(rm.lora!.settings.modulesToSave, ['score']);
    const trainable = rm.trainableVariables();
    assert.ok(trainable.includes(rm.weight('score.weight')));
    assert.equal(trainable.length, 2 * 2 + 1);
    // Train: push the score of one sequence up; the score head moves.
    const batch = { inputIds: [[3, 4, 5]] };
    const opt: tf.Optimizer = tf.train.sgd(0.1);
    const s0 = sequenceScores(rm, batch);
    for (let i = 0; i < 3; i++) {
      const { value, grads } = tf.variableGrads(() => tf.neg(tf.sum(sequenceScores(rm, batch))) as tf.Scalar, trainable);
      opt.applyGradients(grads);
      tf.dispose([value, ...Object.values(grads)]);
    }
    const s1 = sequenceScores(rm, batch);
    assert.ok(s1.dataSync()[0] > s0.dataSync()[0] + 0.01, `score ${s0.dataSync()[0]} -> ${s1.dataSync()[0]}`);
    const dir = join(root, 'rm-adapter');
    await saveLoraAdapter(rm, dir);
    const cfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    assert.equal(cfg.task_type, 'SEQ_CLS');
    assert.deepEqual(cfg.modules_to_save, ['score']);
    const { tensors } = await readSafetensorsFile(join(dir, 'adapter_model.safetensors'));
    assert.deepEqual(tensors.get('base_model.model.score.weight')!.shape, [1, 16]);
    // Loading onto a reward model with a different (fresh) score head restores the trained one.
    const base2 = modelFromHfTensors(config, heads, w, 'test');
    const rm2 = withScoreHead(base2, { seed: 99 });
    base2.dispose();
    await loadLoraAdapter(rm2, dir);
    const s2 = sequenceScores(rm2, batch);
    assert.deepEqual(Array.from(s2.dataSync()), Array.from(s1.dataSync()));
    tf.dispose([s0, s1, s2]);
    rm.dispose();
    rm2.dispose();
  });

  test('invalid settings name the field', () => {
    const model = modelFromHfTensors(config, heads, w, 'test');
    assert.throws(() => applyLora(model, { ...settings, r: 0 }, { seed: 1 }), /"r" is 0; expected a positive integer/);
    assert.throws(() => applyLora(model, { ...settings, targetModules: ['c_attn'] }, { seed: 1 }), /"targetModules" contains "c_attn"/);
    assert.throws(() => applyLora(model, { ...settings, dropout: 1 }, { seed: 1 }), /"dropout" is 1/);
    assert.throws(() => applyLora(model, { ...settings, modulesToSave: ['score'] }, { seed: 1 }), /modulesToSave: "score" is not a weight of this model/);
    model.dispose();
  });
});
