/**
 * Weight uploads for a serving replica, validated completely before anything
 * the replica serves is touched, then applied in one synchronous block (so a
 * scheduler that applies it between decoding steps swaps atomically).
 *
 * - Full: a model.safetensors with every tensor of the loaded model (same
 *   names, same HF shapes, a float dtype, finite values), replacing all
 *   weights (and dropping any LoRA adapters, which were relative to the old ones).
 * - LoRA: a PEFT adapter_model.safetensors plus its adapter_config.json,
 *   applied on top of the current base weights, replacing any previous adapter.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expectedWeightShapes, modelFromHfTensors, parseAdapterConfig, type LlamaModel, type LoraState, type LoraWeights } from '@posttrain/model';
import { parseSafetensors, readSafetensorsFileByTensor, type DecodedTensor } from '@posttrain/safetensors';
import { invalidField } from './serving-error';

/** How an upload's bytes are laid out: a full model.safetensors, or a PEFT LoRA adapter. */
export type WeightsFormatName = 'safetensors-full' | 'lora-adapter';

/**
 * The header of a weights upload (the wire's WeightsHeader, minus the
 * transfer-only total size). Errors name its fields as the wire spells them
 * (`header.version`, `header.manifest[2].shape`).
 */
export interface WeightsUpload {
  /** Monotonic version the upload becomes when applied. */
  version: number;
  /** SHA-256 (lowercase hex) of the bytes; an upload of the loaded version with the same checksum is a duplicate. */
  sha256: string;
  format: WeightsFormatName;
  /** PEFT adapter_config.json, for a LoRA adapter. */
  adapterConfigJson: string;
  /** Optional names and HF shapes of a full upload's tensors, checked before the data arrives. */
  manifest: readonly { name: string; shape: readonly number[] }[];
}

/** Safetensors dtypes that decode to float32 without losing what a float32 model holds. */
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

export interface PreparedWeights {
  format: WeightsFormatName;
  /** Tensors that will be swapped in. */
  tensorCount: number;
  /** Swaps the prepared weights into the model (synchronous); the prepared object is spent afterwards. */
  apply(model: LlamaModel): void;
  /** Frees the prepared tensors without applying them. */
  discard(): void;
}

/**
 * Prepared weights that the first apply or discard spends: apply swaps them
 * in, discard frees them; a second apply throws, a second discard does nothing.
 */
function spentOnce(o: { format: WeightsFormatName; tensorCount: number; swapIn(target: LlamaModel): void; free(): void }): PreparedWeights {
  let spent = false;
  return {
    format: o.format,
    tensorCount: o.tensorCount,
    apply(target: LlamaModel) {
      if (spent) throw new Error('prepared weights were already applied or discarded');
      spent = true;
      o.swapIn(target);
    },
    discard() {
      if (!spent) o.free();
      spent = true;
    },
  };
}

function disposeAdapters(adapters: ReadonlyMap<string, { a: tf.Tensor; b: tf.Tensor }>): void {
  for (const w of adapters.values()) tf.dispose([w.a, w.b]);
}

function loraPrefix(layer: number, target: string): string {
  const block = ['gate_proj', 'up_proj', 'down_proj'].includes(target) ? 'mlp' : 'self_attn';
  return `model.layers.${layer}.${block}.${target}`;
}

/**
 * The bytes of a verified upload: in memory, or a file (a large upload the
 * receiver wrote to disk as it arrived), read tensor by tensor so no buffer
 * is larger than the largest tensor.
 */
export type WeightsPayload = Uint8Array | { path: string };

async function decode(payload: WeightsPayload): Promise<Map<string, DecodedTensor>> {
  try {
    if (payload instanceof Uint8Array) return parseSafetensors(payload, 'upload').tensors;
    return (await readSafetensorsFileByTensor(payload.path)).tensors;
  } catch (e) {
    throw invalidField('data', `not a valid safetensors file: ${(e as Error).message}`);
  }
}

function checkTensor(name: string, t: { dtype: string; shape: number[]; data: Float32Array }, want: readonly number[]): void {
  if (!FLOAT_DTYPES.has(t.dtype)) throw invalidField('data', `tensor ${name} has dtype ${t.dtype}, expected F32, F16 or BF16`);
  if (t.shape.join(',') !== want.join(',')) throw invalidField('data', `tensor ${name} has shape [${t.shape}], expected [${want}] (the loaded model's)`);
  for (let i = 0; i < t.data.length; i++) {
    if (!Number.isFinite(t.data[i])) throw invalidField('data', `tensor ${name} holds a non-finite value (${t.data[i]}) at flat index ${i}`);
  }
}

/** The manifest of a header, checked against the model before any data arrives (the data's own header stays authoritative). */
export function checkWeightsManifest(model: LlamaModel, header: Pick<WeightsUpload, 'format' | 'manifest'>): void {
  if (header.format !== 'safetensors-full' || header.manifest.length === 0) return;
  const expected = expectedWeightShapes(model.config, model.heads);
  header.manifest.forEach((m, i) => {
    const want = expected.get(m.name);
    if (!want) throw invalidField(`header.manifest[${i}].name`, `tensor ${JSON.stringify(m.name)} is not a weight of the loaded model`);
    if (m.shape.join(',') !== want.join(',')) throw invalidField(`header.manifest[${i}].shape`, `tensor ${m.name} has shape [${m.shape}], expected [${want}]`);
  });
}

function prepareFull(model: LlamaModel, tensors: Map<string, DecodedTensor>): PreparedWeights {
  const expected = expectedWeightShapes(model.config, model.heads);
  if (model.config.tieWordEmbeddings && tensors.has('lm_head.weight')) {
    // Some exporters store the tied head; accept it only as the exact copy it must be.
    const head = tensors.get('lm_head.weight')!.data;
    const emb = tensors.get('model.embed_tokens.weight')?.data;
    if (!emb || emb.length !== head.length || emb.some((x, i) => x !== head[i])) {
      throw invalidField('data', 'tensor lm_head.weight differs from model.embed_tokens.weight but the model ties them');
    }
    tensors.delete('lm_head.weight');
  }
  const missing = [...expected.keys()].filter((n) => !tensors.has(n));
  if (missing.length > 0) throw invalidField('data', `missing tensor ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''} (a full upload carries every weight)`);
  const unexpected = [...tensors.keys()].filter((n) => !expected.has(n));
  if (unexpected.length > 0) throw invalidField('data', `unexpected tensor ${unexpected.slice(0, 3).join(', ')}${unexpected.length > 3 ? ` and ${unexpected.length - 3} more` : ''} (not a weight of the loaded model)`);
  for (const [name, want] of expected) checkTensor(name, tensors.get(name)!, want);
  // Builds the new weights as variables now, so apply() is only assignments.
  const candidate = modelFromHfTensors(model.config, model.heads, tensors, 'upload');
  return spentOnce({
    format: 'safetensors-full',
    tensorCount: expected.size,
    swapIn(target) {
      for (const [name, v] of candidate.weights) target.weight(name).assign(v);
      candidate.dispose();
      if (target.lora) {
        disposeAdapters(target.lora.adapters);
        target.lora = null;
      }
    },
    free: () => candidate.dispose(),
  });
}

function prepareLora(model: LlamaModel, tensors: Map<string, DecodedTensor>, adapterConfigJson: string): PreparedWeights {
  let raw: unknown;
  try {
    raw = JSON.parse(adapterConfigJson);
  } catch (e) {
    throw invalidField('header.adapter_config_json', `not valid JSON: ${(e as Error).message}`);
  }
  let settings;
  try {
    settings = parseAdapterConfig(raw, 'adapter_config.json');
  } catch (e) {
    throw invalidField('header.adapter_config_json', (e as Error).message);
  }
  if (settings.dropout !== 0) settings = { ...settings, dropout: 0 }; // serving never applies dropout; kept for the record only
  const expected = new Map<string, { prefix: string; part: 'a' | 'b'; shape: number[] }>();
  for (let l = 0; l < model.config.numLayers; l++) {
    for (const target of settings.targetModules) {
      const prefix = loraPrefix(l, target);
      const [inDim, outDim] = model.weight(`${prefix}.weight`).shape; // stored [in, out]
      expected.set(`base_model.model.${prefix}.lora_A.weight`, { prefix, part: 'a', shape: [settings.r, inDim] });
      expected.set(`base_model.model.${prefix}.lora_B.weight`, { prefix, part: 'b', shape: [outDim, settings.r] });
    }
  }
  for (const [name, e] of expected) {
    const t = tensors.get(name);
    if (!t) throw invalidField('data', `missing tensor ${name} [${e.shape}] (adapter_config.json targets ${settings.targetModules.join(', ')} with r=${settings.r})`);
    checkTensor(name, t, e.shape);
  }
  for (const name of tensors.keys()) {
    if (!expected.has(name)) throw invalidField('data', `unexpected tensor ${name} (not an adapter of target_modules ${settings.targetModules.join(', ')} on this model)`);
  }
  const adapters = new Map<string, LoraWeights>();
  const parts = new Map<string, { a?: tf.Variable; b?: tf.Variable }>();
  for (const [name, e] of expected) {
    const t = tensors.get(name)!;
    // PEFT stores A [r, in] and B [out, r]; the model keeps A [in, r] and B [r, out].
    const v = tf.tidy(() => tf.variable(tf.transpose(tf.tensor2d(t.data, t.shape as [number, number])), false));
    const entry = parts.get(e.prefix) ?? {};
    entry[e.part] = v;
    parts.set(e.prefix, entry);
  }
  for (const [prefix, p] of parts) adapters.set(prefix, { a: p.a!, b: p.b! });
  const state: LoraState = { settings, adapters };
  return spentOnce({
    format: 'lora-adapter',
    tensorCount: expected.size,
    swapIn(target) {
      const old = target.lora;
      target.lora = state;
      if (old) disposeAdapters(old.adapters);
    },
    free: () => disposeAdapters(adapters),
  });
}

/**
 * Validates a verified upload (the bytes already match the header's size and
 * SHA-256) against the model and prepares it for apply(). Rejects with
 * ServingError (invalid-argument) naming the tensor and the problem; the
 * model is untouched.
 */
export async function prepareWeights(model: LlamaModel, header: Pick<WeightsUpload, 'format' | 'adapterConfigJson'>, payload: WeightsPayload): Promise<PreparedWeights> {
  if (header.format !== 'safetensors-full' && header.format !== 'lora-adapter') {
    throw invalidField('header.format', `got ${header.format}, expected WEIGHTS_FORMAT_SAFETENSORS_FULL or WEIGHTS_FORMAT_LORA_ADAPTER`);
  }
  const tensors = await decode(payload);
  return header.format === 'safetensors-full' ? prepareFull(model, tensors) : prepareLora(model, tensors, header.adapterConfigJson);
}
