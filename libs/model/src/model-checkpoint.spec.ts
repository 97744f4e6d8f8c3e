import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { serializeSafetensors } from '@posttrain/safetensors';
import { loadTokenizer } from '@posttrain/tokenizer';
import { parseModelConfig } from './model-config';
import { expectedWeightShapes } from './llama-model';
import { loadModel, modelInfo, saveModel, initModelDir } from './model-checkpoint';
import { sequenceTokenLogProbs } from './token-log-probs';
import { makeTestWeights, referenceLogProbs } from './test-reference';

let root = '';
before(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'model-ckpt-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

// A config.json as transformers writes it for a tiny Llama (extra bookkeeping keys included).
const rawConfig = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 32,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  rope_scaling: null,
  hidden_act: 'silu',
  attention_bias: false,
  attention_dropout: 0.0,
  mlp_bias: false,
  pretraining_tp: 1,
  tie_word_embeddings: false,
  initializer_range: 0.02,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'float32',
  transformers_version: '4.46.0',
  use_cache: true,
};

// Minimal WordLevel tokenizer.json: 32 tokens "t0".."t31", whitespace pre-tokenizer.
const tokenizerJson = JSON.stringify({
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [],
  normalizer: null,
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: null,
  decoder: null,
  model: { type: 'WordLevel', vocab: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`t${i}`, i])), unk_token: 't0' },
});

async function writeTinyModel(dir: string, mutate?: (w: Map<string, { shape: number[]; data: Float32Array }>) => void, configPatch: Record<string, unknown> = {}) {
  await mkdir(dir, { recursive: true });
  const config = parseModelConfig(rawConfig);
  const w = makeTestWeights(config, { lm: true, score: false }, 99);
  mutate?.(w);
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...rawConfig, ...configPatch }));
  await writeFile(join(dir, 'model.safetensors'), serializeSafetensors(w, { format: 'pt' }));
  await writeFile(join(dir, 'tokenizer.json'), tokenizerJson);
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 64, bos_token: 't1', eos_token: 't2', pad_token: 't0' }));
  return { config, w };
}

const ids = [1, 7, 30, 4, 4, 19, 2];
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('HF checkpoint directories', () => {
  test('a test-written tiny Llama loads and matches the reference within 1e-4', async () => {
    const dir = join(root, 'tiny');
    const { config, w } = await writeTinyModel(dir);
    const model = await loadModel(dir);
    const [lp] = sequenceTokenLogProbs(model, [ids]);
    const ref = referenceLogProbs(config, w, ids);
    lp.forEach((x, i) => assert.ok(Math.abs(x - ref[i]) <= 1e-4, `token ${i + 1}: ${x} vs ${ref[i]}`));
    assert.equal(model.assets.get('tokenizer.json'), tokenizerJson);
    assert.deepEqual(model.generationDefaults.eosTokenIds, [2]);
    // Its tokenizer.json (through @posttrain/tokenizer) feeds the model: text -> ids -> log-probs.
    const tokenizer = await loadTokenizer(dir);
    const encoded = tokenizer.encode('t1 t7 t30 t4 t4 t19 t2', { addSpecialTokens: false });
    assert.deepEqual(encoded, ids);
    const [fromText] = sequenceTokenLogProbs(model, [encoded]);
    assert.deepEqual(fromText, lp);
    model.dispose();
  });

  test('save then load gives bitwise-equal log-probs; sharded form too; assets carried', async () => {
    const model = await loadModel(join(root, 'tiny'));
    const [before] = sequenceTokenLogProbs(model, [ids]);
    await saveModel(model, join(root, 'saved'));
    await saveModel(model, join(root, 'sharded'), { maxShardBytes: 4096 });
    await saveModel(model, join(root, 'saved')); // overwrite in place (atomic swap)
    model.dispose();
    const files = await readdir(join(root, 'sharded'));
    assert.ok(files.includes('model.safetensors.index.json'), `sharded files: ${files}`);
    assert.ok((await readdir(root)).every((f) => !f.includes('.tmp-') && !f.includes('.old-')), 'no temp dirs left');
    for (const d of ['saved', 'sharded']) {
      const again = await loadModel(join(root, d));
      const [after] = sequenceTokenLogProbs(again, [ids]);
      assert.deepEqual(after, before, `${d}: log-probs differ after a round trip`);
      assert.equal(await readFile(join(root, d, 'tokenizer.json'), 'utf8'), tokenizerJson);
      again.dispose();
    }
    const gen = JSON.parse(await readFile(join(root, 'saved', 'generation_config.json'), 'utf8'));
    assert.equal(gen.eos_token_id, 2);
  });

  test('modelInfo counts parameters without loading weights', async () => {
    // embed 32*16 + 2 layers * (q 16*16 + k 8*16 + v 8*16 + o 16*16 + mlp 3*16*24 + norms 2*16) + norm 16 + lm_head 32*16
    const expected = 512 + 2 * (256 + 128 + 128 + 256 + 1152 + 32) + 16 + 512;
    const info = await modelInfo(join(root, 'tiny'));
    assert.equal(info.parameterCount, expected);
    assert.deepEqual(info.weightFiles, ['model.safetensors']);
    const sharded = await modelInfo(join(root, 'sharded'));
    assert.equal(sharded.parameterCount, expected);
    assert.ok(sharded.weightFiles.length >= 3);
  });

  test('missing, unexpected and wrong-shaped tensors are named', async () => {
    await writeTinyModel(join(root, 'missing'), (w) => w.delete('model.layers.1.mlp.up_proj.weight'));
    await assert.rejects(loadModel(join(root, 'missing')), /missing tensor model\.layers\.1\.mlp\.up_proj\.weight \[24,16\]/);
    await writeTinyModel(join(root, 'extra'), (w) => w.set('model.layers.0.mlp.extra_proj.weight', { shape: [2], data: new Float32Array(2) }));
    await assert.rejects(loadModel(join(root, 'extra')), /unexpected tensor model\.layers\.0\.mlp\.extra_proj\.weight/);
    // The derived rotary buffer some exports include is skipped, as transformers does.
    await writeTinyModel(join(root, 'inv-freq'), (w) => w.set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [2], data: new Float32Array(2) }));
    (await loadModel(join(root, 'inv-freq'))).dispose();
    await writeTinyModel(join(root, 'shape'), (w) => w.set('model.norm.weight', { shape: [8], data: new Float32Array(8) }));
    await assert.rejects(loadModel(join(root, 'shape')), /tensor model\.norm\.weight has shape \[8\], expected \[16\]/);
  });

  test('unsupported configs name the key', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ rope_scaling: { type: 'linear', factor: 2 } }, /"rope_scaling" is .*expected null/],
      [{ hidden_act: 'gelu' }, /"hidden_act" is "gelu"/],
      [{ model_type: 'gpt2' }, /"model_type" is "gpt2"/],
      [{ mystery_key: 3 }, /"mystery_key" is 3; expected no such key/],
      [{ num_key_value_heads: 3 }, /"num_key_value_heads" is 3; expected a divisor/],
      [{ hidden_size: -4 }, /"hidden_size" is -4; expected a positive integer/],
    ];
    for (const [patch, re] of cases) {
      const dir = join(root, `bad-${Object.keys(patch)[0]}`);
      await writeTinyModel(dir, undefined, patch);
      await assert.rejects(loadModel(dir), re);
      await assert.rejects(loadModel(dir), new RegExp(join(dir, 'config.json').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    }
  });

  test('token ids that do not fit the embedding are refused on load, naming both files and the numbers', async () => {
    // The tokenizer has 32 tokens (t0..t31); an embedding of 30 rows cannot hold ids 30 and 31.
    const small = join(root, 'vocab-small');
    await writeTinyModel(small, (w) => {
      for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) w.set(name, { shape: [30, 16], data: w.get(name)!.data.slice(0, 30 * 16) });
    }, { vocab_size: 30 });
    const mismatch = new RegExp(`${esc(join(small, 'tokenizer.json'))} has 32 tokens \\(ids 0\\.\\.31\\) but ${esc(join(small, 'config.json'))} "vocab_size" is 30: .*expected "vocab_size" >= 32`);
    await assert.rejects(loadModel(small), mismatch);
    await assert.rejects(modelInfo(small), mismatch);
    // A padded embedding (more rows than tokens) is fine, as Qwen and Gemma ship it.
    const padded = join(root, 'vocab-padded');
    await writeTinyModel(padded, (w) => {
      for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
        const data = new Float32Array(40 * 16);
        data.set(w.get(name)!.data);
        w.set(name, { shape: [40, 16], data });
      }
    }, { vocab_size: 40 });
    (await loadModel(padded)).dispose();
    // generation_config.json's ids are checked against config.json's vocab_size.
    const gen = join(root, 'gen-eos');
    await writeTinyModel(gen);
    await writeFile(join(gen, 'generation_config.json'), JSON.stringify({ eos_token_id: [2, 32] }));
    await assert.rejects(loadModel(gen), new RegExp(`${esc(join(gen, 'generation_config.json'))} "eos_token_id" is \\[2,32\\] but ${esc(join(gen, 'config.json'))} "vocab_size" is 32: expected token id\\(s\\) in \\[0, 32\\)`));
    // config.json's own special ids.
    assert.throws(() => parseModelConfig({ ...rawConfig, eos_token_id: [2, 32] }, 'c.json'), /c\.json: "eos_token_id" is \[2,32\]; expected token id\(s\) below "vocab_size" 32/);
    assert.throws(() => parseModelConfig({ ...rawConfig, pad_token_id: 40 }, 'c.json'), /"pad_token_id" is 40; expected token id\(s\) below "vocab_size" 32/);
  });

  test('initModelDir never writes a directory whose tokenizer does not fit', async () => {
    const dir = join(root, 'init-small');
    await assert.rejects(initModelDir(dir, { hiddenSize: 8, numLayers: 1, numHeads: 2, intermediateSize: 8, vocabSize: 31 }, { seed: 1, assets: { 'tokenizer.json': tokenizerJson } }), /has 32 tokens .* "vocab_size" is 31/);
    await assert.rejects(readdir(dir), /ENOENT/);
  });

  test('initModelDir writes a loadable random model of the requested shape', async () => {
    const dir = join(root, 'init');
    const config = await initModelDir(dir, { hiddenSize: 32, numLayers: 1, numHeads: 2, intermediateSize: 48, vocabSize: 40 }, { seed: 3, assets: { 'tokenizer.json': tokenizerJson } });
    const model = await loadModel(dir);
    assert.equal(model.config.hiddenSize, 32);
    assert.deepEqual([...model.weights.keys()].sort(), [...expectedWeightShapes(config, { lm: true, score: false }).keys()].sort());
    // N(0, 0.02) init: the sample std of the embedding is near 0.02 (1280 draws: within 10%).
    const emb = model.weight('model.embed_tokens.weight').dataSync() as Float32Array;
    const std = Math.sqrt(emb.reduce((a, x) => a + x * x, 0) / emb.length);
    assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`);
    assert.equal(model.assets.get('tokenizer.json'), tokenizerJson);
    model.dispose();
  });
});
