import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { countParameters, modelConfigToJson, parseModelConfig } from './model-config';

// config.json files as published on the Hugging Face Hub (values copied from the model cards' files).
const qwen25_05b = {
  architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, hidden_act: 'silu',
  hidden_size: 896, initializer_range: 0.02, intermediate_size: 4864, max_position_embeddings: 32768, max_window_layers: 21,
  model_type: 'qwen2', num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6,
  rope_theta: 1000000.0, sliding_window: 32768, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.43.1',
  use_cache: true, use_sliding_window: false, vocab_size: 151936,
};
const smollm135m = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 0, eos_token_id: 0,
  hidden_act: 'silu', hidden_size: 576, initializer_range: 0.02, intermediate_size: 1536, max_position_embeddings: 2048,
  model_type: 'llama', num_attention_heads: 9, num_hidden_layers: 30, num_key_value_heads: 3, pretraining_tp: 1,
  rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000.0, tie_word_embeddings: true, torch_dtype: 'float32',
  transformers_version: '4.40.1', use_cache: true, vocab_size: 49152,
};
const llama32_1b_rope = {
  factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3',
};

describe('parseModelConfig', () => {
  test('Qwen2.5-0.5B: biases on q/k/v only, tied, GQA 14/2; 494,032,768 parameters', () => {
    const c = parseModelConfig(qwen25_05b);
    assert.equal(c.qkvBias, true);
    assert.equal(c.oBias, false);
    assert.equal(c.headDim, 64);
    assert.equal(c.slidingWindow, null, 'qwen2 with use_sliding_window false attends fully');
    // embed 151936*896 + 24 * (q 896*896+896 + k,v 2*(896*128+128) + o 896*896 + mlp 3*896*4864 + norms 2*896) + norm 896
    assert.equal(countParameters(c, { lm: true, score: false }), 494032768);
  });

  test('SmolLM-135M: 134,515,008 parameters', () => {
    const c = parseModelConfig(smollm135m);
    assert.equal(c.numKvHeads, 3);
    assert.equal(c.tieWordEmbeddings, true);
    // embed 49152*576 + 30 * (q,o 2*576*576 + k,v 2*576*192 + mlp 3*576*1536 + norms 2*576) + norm 576
    assert.equal(countParameters(c, { lm: true, score: false }), 134515008);
  });

  test('Llama 3.2 rope_scaling (llama3) and other unsupported settings are named', () => {
    assert.throws(() => parseModelConfig({ ...smollm135m, rope_scaling: llama32_1b_rope }, 'Llama-3.2-1B/config.json'), /Llama-3\.2-1B\/config\.json: "rope_scaling" is \{"factor":32.*expected null/);
    assert.throws(() => parseModelConfig({ ...qwen25_05b, use_sliding_window: true }), /"use_sliding_window" is true/);
    assert.throws(() => parseModelConfig({ ...smollm135m, mlp_bias: true }), /"mlp_bias" is true/);
    assert.throws(() => parseModelConfig({ ...smollm135m, architectures: ['LlamaForTokenClassification'] }), /"architectures" is \["LlamaForTokenClassification"\]/);
    assert.throws(() => parseModelConfig({ ...smollm135m, rope_parameters: { rope_type: 'yarn', factor: 4 } }), /"rope_parameters\.rope_type" is "yarn"/);
    assert.throws(() => parseModelConfig({ ...smollm135m, head_dim: 63 }), /"head_dim" is 63; expected an even positive integer/);
    assert.throws(() => parseModelConfig([1, 2]), /expected a JSON object/);
  });

  test('transformers v5 rope_parameters carry rope_theta; mistral keeps its sliding window', () => {
    const c = parseModelConfig({ ...smollm135m, rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 500000 } });
    assert.equal(c.ropeTheta, 500000);
    const m = parseModelConfig({ ...smollm135m, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: 4096 });
    assert.equal(m.slidingWindow, 4096);
  });

  test("OpenRLHF's reward-model keys: normalize_reward, mean and std are read, checked and written back", () => {
    const rm = { ...smollm135m, architectures: ['LlamaForSequenceClassification'], num_labels: 1 };
    const c = parseModelConfig({ ...rm, normalize_reward: true, mean: -0.25, std: 2 });
    assert.deepEqual([c.rewardStats, c.normalizeReward], [{ mean: -0.25, std: 2 }, true]);
    const json = modelConfigToJson(c);
    assert.deepEqual([json.normalize_reward, json.mean, json.std], [true, -0.25, 2]);
    assert.deepEqual(parseModelConfig(JSON.parse(JSON.stringify(json))), c);
    const off = parseModelConfig({ ...rm, mean: 1, std: 3 });
    assert.deepEqual([off.rewardStats, off.normalizeReward], [{ mean: 1, std: 3 }, false], 'statistics recorded, not switched on');
    assert.equal(parseModelConfig(rm).rewardStats, undefined);
    assert.equal('normalize_reward' in modelConfigToJson(parseModelConfig(rm)), false);
    assert.throws(() => parseModelConfig({ ...rm, normalize_reward: true }), /"normalize_reward" is true; expected false without "mean" and "std"/);
    assert.throws(() => parseModelConfig({ ...rm, normalize_reward: 'yes', mean: 0, std: 1 }), /"normalize_reward" is "yes"; expected true or false/);
    assert.throws(() => parseModelConfig({ ...rm, mean: 0, std: 0 }), /"std" is 0; expected a positive number/);
    assert.throws(() => parseModelConfig({ ...rm, mean: 0 }), /"std" is undefined; expected a positive number/);
    assert.throws(() => parseModelConfig({ ...rm, mean: 'x', std: 1 }), /"mean" is "x"; expected a finite number/);
    assert.throws(() => parseModelConfig({ ...smollm135m, mean: 0, std: 1 }), /"mean" is 0; expected absent \(score statistics belong to a \*ForSequenceClassification reward model\)/);
  });
});
