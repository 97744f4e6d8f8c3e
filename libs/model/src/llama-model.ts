/**
 * The model object: a config, its weights as tf.Variables, optional LoRA
 * adapters, and the non-weight files of its checkpoint directory.
 *
 * Weights are keyed by their Hugging Face names. Linear weights (every
 * `*_proj.weight`, `lm_head.weight`, `score.weight`) are stored transposed, as
 * [in, out], so the forward pass is a plain x·W; they are transposed back to
 * HF's [out, in] only when written.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@posttrain/random';
import type { ModelConfig } from './model-config';
import { countParameters } from './model-config';

export interface ModelHeads {
  /** Next-token logits (lm_head.weight, or the embedding when tied). */
  lm: boolean;
  /** Scalar value/reward per position (score.weight, HF *ForSequenceClassification). */
  score: boolean;
}

/** LoRA state of one projection (internal layout: A [in, r], B [r, out]). */
export interface LoraWeights {
  a: tf.Variable;
  b: tf.Variable;
}

export interface LoraSettings {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: string[];
  /**
   * Head weights trained fully alongside the adapters (PEFT modules_to_save): 'score' and/or 'lm_head'.
   * They are updated in place in the base weights and saved with the adapter.
   */
  modulesToSave: string[];
}

export interface LoraState {
  settings: LoraSettings;
  /** Keyed by projection prefix, e.g. `model.layers.0.self_attn.q_proj`. */
  adapters: Map<string, LoraWeights>;
}

/** True for HF names stored internally as [in, out]. */
export function isTransposedWeight(name: string): boolean {
  return name.endsWith('_proj.weight') || name === 'lm_head.weight' || name === 'score.weight';
}

/** The HF-layout shape of every weight a model with this config and these heads has. */
export function expectedWeightShapes(c: ModelConfig, heads: ModelHeads): Map<string, number[]> {
  const d = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [c.vocabSize, d]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.self_attn.q_proj.weight`, [q, d]);
    m.set(`${p}.self_attn.k_proj.weight`, [kv, d]);
    m.set(`${p}.self_attn.v_proj.weight`, [kv, d]);
    m.set(`${p}.self_attn.o_proj.weight`, [d, q]);
    if (c.qkvBias) {
      m.set(`${p}.self_attn.q_proj.bias`, [q]);
      m.set(`${p}.self_attn.k_proj.bias`, [kv]);
      m.set(`${p}.self_attn.v_proj.bias`, [kv]);
    }
    if (c.oBias) m.set(`${p}.self_attn.o_proj.bias`, [d]);
    if (c.qkNorm) {
      m.set(`${p}.self_attn.q_norm.weight`, [c.headDim]);
      m.set(`${p}.self_attn.k_norm.weight`, [c.headDim]);
    }
    m.set(`${p}.mlp.gate_proj.weight`, [c.intermediateSize, d]);
    m.set(`${p}.mlp.up_proj.weight`, [c.intermediateSize, d]);
    m.set(`${p}.mlp.down_proj.weight`, [d, c.intermediateSize]);
    m.set(`${p}.input_layernorm.weight`, [d]);
    m.set(`${p}.post_attention_layernorm.weight`, [d]);
  }
  m.set('model.norm.weight', [d]);
  if (heads.lm && !c.tieWordEmbeddings) m.set('lm_head.weight', [c.vocabSize, d]);
  if (heads.score) m.set('score.weight', [1, d]);
  return m;
}

/** Internal shape of a weight given its HF shape. */
export function internalShape(name: string, hfShape: number[]): number[] {
  return isTransposedWeight(name) ? [hfShape[1], hfShape[0]] : hfShape;
}

/** A generation_config.json's sampling defaults (only the fields generation uses). */
export interface GenerationDefaults {
  eosTokenIds: number[];
  padTokenId: number | null;
  temperature?: number;
  topK?: number;
  topP?: number;
}

export class LlamaModel {
  readonly config: ModelConfig;
  readonly heads: ModelHeads;
  readonly weights: Map<string, tf.Variable>;
  lora: LoraState | null = null;
  /** Non-weight files of the checkpoint (tokenizer.json, tokenizer_config.json, ...), written back by saveModel. */
  readonly assets: Map<string, string>;
  generationDefaults: GenerationDefaults;

  constructor(config: ModelConfig, heads: ModelHeads, weights: Map<string, tf.Variable>, assets = new Map<string, string>()) {
    if (!heads.lm && !heads.score) throw new Error('a model needs an LM head, a score head, or both');
    const expected = expectedWeightShapes(config, heads);
    for (const [name, shape] of expected) {
      const v = weights.get(name);
      if (!v) throw new Error(`weight ${name} is missing (expected HF shape [${shape}])`);
      const want = internalShape(name, shape);
      if (v.shape.join(',') !== want.join(',')) {
        throw new Error(`weight ${name} has internal shape [${v.shape}], expected [${want}]`);
      }
    }
    for (const name of weights.keys()) {
      if (!expected.has(name)) throw new Error(`unexpected weight ${name} for this config`);
    }
    this.config = config;
    this.heads = heads;
    this.weights = weights;
    this.assets = assets;
    const eos = config.eosTokenId;
    this.generationDefaults = {
      eosTokenIds: eos === null ? [] : Array.isArray(eos) ? [...eos] : [eos],
      padTokenId: config.padTokenId,
    };
  }

  weight(name: string): tf.Variable {
    const v = this.weights.get(name);
    if (!v) throw new Error(`model has no weight ${name}`);
    return v;
  }

  /** Parameter count of the base weights (LoRA adapters excluded). */
  parameterCount(): number {
    return countParameters(this.config, this.heads);
  }

  /**
   * What an optimizer should update, by stable name: when LoRA is applied, the adapters
   * (`<module>.lora_A`, `<module>.lora_B`) and the modules_to_save heads (`score.weight`);
   * else every weight by its Hugging Face name.
   */
  namedTrainables(): { name: string; variable: tf.Variable }[] {
    if (this.lora) {
      const adapters = [...this.lora.adapters].flatMap(([prefix, w]) => [
        { name: `${prefix}.lora_A`, variable: w.a },
        { name: `${prefix}.lora_B`, variable: w.b },
      ]);
      const heads = this.lora.settings.modulesToSave.map((m) => ({ name: `${m}.weight`, variable: this.weight(`${m}.weight`) }));
      return [...adapters, ...heads];
    }
    return [...this.weights].map(([name, variable]) => ({ name, variable }));
  }

  /** The variables of namedTrainables(). */
  trainableVariables(): tf.Variable[] {
    return this.namedTrainables().map((p) => p.variable);
  }

  dispose(): void {
    for (const v of this.weights.values()) v.dispose();
    if (this.lora) for (const w of this.lora.adapters.values()) { w.a.dispose(); w.b.dispose(); }
    this.weights.clear();
    this.lora = null;
  }
}

/** Variable from a flat Float32Array (HF layout), transposing linear weights to [in, out]. */
export function variableFromHf(name: string, hfShape: number[], data: Float32Array, trainable = true): tf.Variable {
  return tf.tidy(() => {
    let t: tf.Tensor = tf.tensor(data, hfShape, 'float32');
    if (isTransposedWeight(name)) t = tf.transpose(t);
    return tf.variable(t, trainable, uniqueVariableName(name));
  });
}

let nextVariableId = 0;

/** tfjs variable names are global; suffix the HF name so several models can live side by side. */
export function uniqueVariableName(name: string): string {
  return `${name}#${nextVariableId++}`;
}

/** A model with freshly initialised weights: N(0, initializer_range) for matrices, ones for norms, zeros for biases. */
export function initModel(config: ModelConfig, options: { seed: number | string; heads?: ModelHeads }): LlamaModel {
  const heads = options.heads ?? { lm: !config.architecture.endsWith('ForSequenceClassification'), score: config.architecture.endsWith('ForSequenceClassification') };
  const rng = new Rng(options.seed);
  const weights = new Map<string, tf.Variable>();
  for (const [name, shape] of expectedWeightShapes(config, heads)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith('norm.weight')) data.fill(1); // every RMSNorm (layer norms, the final norm, Qwen3's q_norm/k_norm) starts as the identity
    else if (!name.endsWith('.bias')) for (let i = 0; i < n; i++) data[i] = rng.normal(0, config.initializerRange);
    weights.set(name, variableFromHf(name, shape, data));
  }
  return new LlamaModel(config, heads, weights);
}

/** HF-layout tensors as read from safetensors. */
export type HfTensorMap = Map<string, { shape: number[]; data: Float32Array }>;

/**
 * Builds a model from HF-layout tensors, checking that every expected tensor is present with its
 * expected shape and that no other tensor is there; `source` (a file or directory) prefixes errors.
 */
export function modelFromHfTensors(config: ModelConfig, heads: ModelHeads, tensors: HfTensorMap, source: string, assets?: Map<string, string>): LlamaModel {
  const expected = expectedWeightShapes(config, heads);
  const missing = [...expected.keys()].filter((n) => !tensors.has(n));
  if (missing.length > 0) {
    throw new Error(`${source}: missing tensor ${missing.slice(0, 5).map((n) => `${n} [${expected.get(n)}]`).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`);
  }
  const unexpected = [...tensors.keys()].filter((n) => !expected.has(n));
  if (unexpected.length > 0) {
    throw new Error(`${source}: unexpected tensor ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : ''} (not part of a ${config.architecture} with this config)`);
  }
  for (const [name, shape] of expected) {
    const t = tensors.get(name)!;
    if (t.shape.join(',') !== shape.join(',')) throw new Error(`${source}: tensor ${name} has shape [${t.shape}], expected [${shape}]`);
    if (t.data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`${source}: tensor ${name} holds ${t.data.length} values, expected ${shape.reduce((a, b) => a * b, 1)}`);
  }
  const weights = new Map<string, tf.Variable>();
  for (const [name, shape] of expected) weights.set(name, variableFromHf(name, shape, tensors.get(name)!.data));
  return new LlamaModel(config, heads, weights, assets);
}

/** The model's weights in HF layout ([out, in] linears), e.g. for safetensors. */
export function modelToHfTensors(model: LlamaModel): HfTensorMap {
  const out: HfTensorMap = new Map();
  for (const [name, v] of model.weights) {
    const t = isTransposedWeight(name) ? tf.transpose(v) : v;
    out.set(name, { shape: t.shape.slice(), data: (t.dataSync() as Float32Array).slice() });
    if (t !== v) t.dispose();
  }
  return out;
}

/**
 * Replaces the model's weights in place with HF-layout tensors (e.g. a weights push from the trainer).
 * Every weight of the model must be given with its shape, and nothing else; validation happens before
 * any variable changes, so a bad push leaves the model as it was.
 */
export function assignHfTensors(model: LlamaModel, tensors: HfTensorMap, source: string): void {
  const expected = expectedWeightShapes(model.config, model.heads);
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) throw new Error(`${source}: missing tensor ${name} [${shape}]`);
    if (t.shape.join(',') !== shape.join(',')) throw new Error(`${source}: tensor ${name} has shape [${t.shape}], expected [${shape}]`);
    if (t.data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`${source}: tensor ${name} holds ${t.data.length} values, expected ${shape.reduce((a, b) => a * b, 1)}`);
  }
  for (const name of tensors.keys()) if (!expected.has(name)) throw new Error(`${source}: unexpected tensor ${name}`);
  for (const [name, shape] of expected) {
    const v = model.weight(name);
    tf.tidy(() => {
      const t = tf.tensor(tensors.get(name)!.data, shape, 'float32');
      v.assign(isTransposedWeight(name) ? tf.transpose(t) : t);
    });
  }
}

/** An independent copy (weights, LoRA adapters, assets), e.g. a frozen reference model. */
export function cloneModel(model: LlamaModel, options: { trainable?: boolean } = {}): LlamaModel {
  const trainable = options.trainable ?? true;
  const weights = new Map<string, tf.Variable>();
  for (const [name, v] of model.weights) weights.set(name, tf.variable(v, trainable, uniqueVariableName(name)));
  const copy = new LlamaModel(model.config, { ...model.heads }, weights, new Map(model.assets));
  copy.generationDefaults = { ...model.generationDefaults, eosTokenIds: [...model.generationDefaults.eosTokenIds] };
  if (model.lora) {
    const adapters = new Map<string, LoraWeights>();
    for (const [prefix, w] of model.lora.adapters) {
      adapters.set(prefix, { a: tf.variable(w.a, trainable, uniqueVariableName(`${prefix}.lora_A`)), b: tf.variable(w.b, trainable, uniqueVariableName(`${prefix}.lora_B`)) });
    }
    const s = model.lora.settings;
    copy.lora = { settings: { ...s, targetModules: [...s.targetModules], modulesToSave: [...s.modulesToSave] }, adapters };
  }
  return copy;
}
