/**
 * LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"):
 * a projection y = x·W becomes y = x·W + (alpha / r) · dropout(x)·A·B, with A [in, r]
 * initialised like PEFT (kaiming-uniform with a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in)))
 * and B [r, out] zero, so a fresh adapter leaves the model unchanged. Only A and B train.
 *
 * On disk, the PEFT layout: adapter_config.json and adapter_model.safetensors with
 * `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]
 * (PyTorch Linear layout; transposed from ours on save and load).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@posttrain/random';
import { readSafetensorsFile, serializeSafetensors, writeDirAtomic } from '@posttrain/safetensors';
import type { LlamaModel, LoraSettings, LoraWeights } from './llama-model';
import { uniqueVariableName } from './llama-model';

export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
/** Heads that can be trained in full next to the adapters (PEFT modules_to_save). */
export const LORA_MODULES_TO_SAVE = ['score', 'lm_head'] as const;

function modulePrefix(layer: number, target: string): string {
  return `model.layers.${layer}.${target.endsWith('_proj') && ['gate_proj', 'up_proj', 'down_proj'].includes(target) ? 'mlp' : 'self_attn'}.${target}`;
}

/** Validates LoRA settings; `source` names where they came from. */
export function validateLoraSettings(s: Partial<LoraSettings> & Record<string, unknown>, source = 'lora'): LoraSettings {
  const { r, alpha, targetModules } = s;
  const modulesToSave = s.modulesToSave ?? [];
  if (!Array.isArray(modulesToSave)) throw new Error(`${source}: "modulesToSave" is ${JSON.stringify(modulesToSave)}; expected a list of ${LORA_MODULES_TO_SAVE.join(', ')}`);
  for (const m of modulesToSave) {
    if (!(LORA_MODULES_TO_SAVE as readonly string[]).includes(m)) throw new Error(`${source}: "modulesToSave" contains ${JSON.stringify(m)}; expected one of ${LORA_MODULES_TO_SAVE.join(', ')}`);
  }
  const dropout = s.dropout ?? 0;
  if (!Number.isInteger(r) || (r as number) < 1) throw new Error(`${source}: "r" is ${JSON.stringify(r)}; expected a positive integer`);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) throw new Error(`${source}: "alpha" is ${JSON.stringify(alpha)}; expected a positive number`);
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw new Error(`${source}: "dropout" is ${JSON.stringify(dropout)}; expected a number in [0, 1)`);
  if (!Array.isArray(targetModules) || targetModules.length === 0) {
    throw new Error(`${source}: "targetModules" is ${JSON.stringify(targetModules)}; expected a non-empty list of ${LORA_TARGETS.join(', ')}`);
  }
  for (const t of targetModules) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) throw new Error(`${source}: "targetModules" contains ${JSON.stringify(t)}; expected one of ${LORA_TARGETS.join(', ')}`);
  }
  return { r: r as number, alpha, dropout, targetModules: [...new Set(targetModules)], modulesToSave: [...new Set(modulesToSave)] };
}

function projectionShape(model: LlamaModel, prefix: string): [number, number] {
  const [inDim, outDim] = model.weight(`${prefix}.weight`).shape;
  return [inDim, outDim];
}

/**
 * Adds fresh adapters to every layer's target projections; the model's trainableVariables() becomes the
 * adapters plus the modulesToSave heads. For a sequence classifier (score head, no LM head) modulesToSave
 * defaults to ['score'], as PEFT's SEQ_CLS task does: a fresh reward head must train.
 */
export function applyLora(model: LlamaModel, settings: Omit<LoraSettings, 'modulesToSave'> & { modulesToSave?: string[] }, options: { seed: number | string }): void {
  if (model.lora) throw new Error('applyLora: the model already has LoRA adapters (merge or remove them first)');
  const defaultSave = model.heads.score && !model.heads.lm ? ['score'] : [];
  const s = validateLoraSettings({ ...settings, modulesToSave: settings.modulesToSave ?? defaultSave });
  checkModulesToSave(model, s.modulesToSave, 'modulesToSave');
  const rng = new Rng(options.seed);
  const adapters = new Map<string, LoraWeights>();
  for (let l = 0; l < model.config.numLayers; l++) {
    for (const target of s.targetModules) {
      const prefix = modulePrefix(l, target);
      const [inDim, outDim] = projectionShape(model, prefix);
      const bound = 1 / Math.sqrt(inDim);
      const a = new Float32Array(inDim * s.r);
      for (let i = 0; i < a.length; i++) a[i] = (rng.nextFloat() * 2 - 1) * bound;
      adapters.set(prefix, {
        a: tf.variable(tf.tensor2d(a, [inDim, s.r]), true, uniqueVariableName(`${prefix}.lora_A`)),
        b: tf.variable(tf.zeros([s.r, outDim]), true, uniqueVariableName(`${prefix}.lora_B`)),
      });
    }
  }
  model.lora = { settings: s, adapters };
}

function checkModulesToSave(model: LlamaModel, modules: string[], field: string): void {
  for (const m of modules) {
    if (!model.weights.has(`${m}.weight`)) {
      throw new Error(`${field}: ${JSON.stringify(m)} is not a weight of this model (${m === 'lm_head' && model.config.tieWordEmbeddings ? 'the LM head is tied to the embedding' : `no ${m}.weight`})`);
    }
  }
}

/** Drops the adapters (base weights stay as they are, including any trained modulesToSave heads). */
export function removeLora(model: LlamaModel): void {
  if (!model.lora) return;
  for (const w of model.lora.adapters.values()) tf.dispose([w.a, w.b]);
  model.lora = null;
}

/** Folds the adapters into the base weights, W <- W + (alpha / r)·A·B, and removes them. */
export function mergeLora(model: LlamaModel): void {
  const lora = model.lora;
  if (!lora) throw new Error('mergeLora: the model has no LoRA adapters');
  const scale = lora.settings.alpha / lora.settings.r;
  for (const [prefix, w] of lora.adapters) {
    const base = model.weight(`${prefix}.weight`);
    tf.tidy(() => base.assign(tf.add(base, tf.mul(tf.matMul(w.a, w.b), scale)))); // (in, r) x (r, out)
  }
  removeLora(model);
}

const ADAPTER_CONFIG = 'adapter_config.json';
const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** Writes adapter_config.json and adapter_model.safetensors (PEFT layout) atomically into `dir`. */
export async function saveLoraAdapter(model: LlamaModel, dir: string, options: { baseModel?: string } = {}): Promise<void> {
  const lora = model.lora;
  if (!lora) throw new Error('saveLoraAdapter: the model has no LoRA adapters');
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const m of lora.settings.modulesToSave) {
    // PEFT stores a modules_to_save copy as base_model.model.<module>.weight, PyTorch layout [out, in].
    const t = tf.transpose(model.weight(`${m}.weight`));
    tensors.set(`base_model.model.${m}.weight`, { shape: t.shape.slice(), data: (t.dataSync() as Float32Array).slice() });
    t.dispose();
  }
  for (const [prefix, w] of lora.adapters) {
    for (const [part, v] of [['lora_A', w.a], ['lora_B', w.b]] as const) {
      const t = tf.transpose(v); // ours [in, r] / [r, out] -> PEFT [r, in] / [out, r]
      tensors.set(`base_model.model.${prefix}.${part}.weight`, { shape: t.shape.slice(), data: (t.dataSync() as Float32Array).slice() });
      t.dispose();
    }
  }
  const config = {
    peft_type: 'LORA',
    task_type: model.heads.lm ? 'CAUSAL_LM' : 'SEQ_CLS',
    base_model_name_or_path: options.baseModel ?? null,
    r: lora.settings.r,
    lora_alpha: lora.settings.alpha,
    lora_dropout: lora.settings.dropout,
    target_modules: lora.settings.targetModules,
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    modules_to_save: lora.settings.modulesToSave.length > 0 ? lora.settings.modulesToSave : null,
    inference_mode: true,
  };
  await writeDirAtomic(dir, async (tmp) => {
    await writeFile(join(tmp, ADAPTER_CONFIG), JSON.stringify(config, null, 2) + '\n');
    await writeFile(join(tmp, ADAPTER_WEIGHTS), serializeSafetensors(tensors, { format: 'pt' }));
  });
}

/** Parses a PEFT adapter_config.json into LoRA settings, rejecting options this implementation does not compute. */
export function parseAdapterConfig(raw: unknown, source: string): LoraSettings {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${source}: expected a JSON object`);
  const r = raw as Record<string, unknown>;
  const must = (key: string, ok: (v: unknown) => boolean, expected: string) => {
    if (key in r && !ok(r[key])) throw new Error(`${source}: "${key}" is ${JSON.stringify(r[key])}; expected ${expected}`);
  };
  if (r.peft_type !== 'LORA') throw new Error(`${source}: "peft_type" is ${JSON.stringify(r.peft_type)}; expected "LORA"`);
  must('bias', (v) => v === 'none', '"none"');
  must('fan_in_fan_out', (v) => v === false, 'false');
  must('use_rslora', (v) => v === false, 'false (rsLoRA scaling is not supported)');
  must('use_dora', (v) => v === false, 'false (DoRA is not supported)');
  must('modules_to_save', (v) => v === null || Array.isArray(v), `null or a list of ${LORA_MODULES_TO_SAVE.join(', ')}`);
  must('layers_to_transform', (v) => v === null, 'null (adapters on every layer)');
  must('rank_pattern', (v) => v === null || (typeof v === 'object' && Object.keys(v as object).length === 0), '{} (one rank for all modules)');
  must('alpha_pattern', (v) => v === null || (typeof v === 'object' && Object.keys(v as object).length === 0), '{} (one alpha for all modules)');
  if (!Array.isArray(r.target_modules)) throw new Error(`${source}: "target_modules" is ${JSON.stringify(r.target_modules)}; expected a list of module names`);
  return validateLoraSettings({
    r: r.r as number,
    alpha: r.lora_alpha as number,
    dropout: (r.lora_dropout ?? 0) as number,
    targetModules: r.target_modules as string[],
    modulesToSave: (r.modules_to_save ?? []) as string[],
  }, source);
}

/** Loads a PEFT adapter directory onto the model (which must have no adapters yet). */
export async function loadLoraAdapter(model: LlamaModel, dir: string): Promise<void> {
  if (model.lora) throw new Error('loadLoraAdapter: the model already has LoRA adapters');
  const cfgPath = join(dir, ADAPTER_CONFIG);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(cfgPath, 'utf8'));
  } catch (e) {
    throw new Error(`${cfgPath}: cannot read adapter config (${(e as Error).message})`);
  }
  const settings = parseAdapterConfig(raw, cfgPath);
  checkModulesToSave(model, settings.modulesToSave, `${cfgPath}: "modules_to_save"`);
  const weightsPath = join(dir, ADAPTER_WEIGHTS);
  const { tensors } = await readSafetensorsFile(weightsPath);
  const expected = new Map<string, number[]>();
  for (const m of settings.modulesToSave) {
    const [inDim, outDim] = model.weight(`${m}.weight`).shape;
    expected.set(`base_model.model.${m}.weight`, [outDim, inDim]);
  }
  for (let l = 0; l < model.config.numLayers; l++) {
    for (const target of settings.targetModules) {
      const prefix = modulePrefix(l, target);
      const [inDim, outDim] = projectionShape(model, prefix);
      expected.set(`base_model.model.${prefix}.lora_A.weight`, [settings.r, inDim]);
      expected.set(`base_model.model.${prefix}.lora_B.weight`, [outDim, settings.r]);
    }
  }
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) throw new Error(`${weightsPath}: missing tensor ${name} [${shape}]`);
    if (t.shape.join(',') !== shape.join(',')) throw new Error(`${weightsPath}: tensor ${name} has shape [${t.shape}], expected [${shape}]`);
  }
  for (const name of tensors.keys()) {
    if (!expected.has(name)) throw new Error(`${weightsPath}: unexpected tensor ${name} (not an adapter of target_modules ${settings.targetModules.join(', ')})`);
  }
  for (const m of settings.modulesToSave) {
    const t = tensors.get(`base_model.model.${m}.weight`)!;
    const v = model.weight(`${m}.weight`);
    tf.tidy(() => v.assign(tf.transpose(tf.tensor2d(t.data, t.shape as [number, number]))));
  }
  const adapters = new Map<string, LoraWeights>();
  for (let l = 0; l < model.config.numLayers; l++) {
    for (const target of settings.targetModules) {
      const prefix = modulePrefix(l, target);
      const a = tensors.get(`base_model.model.${prefix}.lora_A.weight`)!;
      const b = tensors.get(`base_model.model.${prefix}.lora_B.weight`)!;
      adapters.set(prefix, tf.tidy(() => ({
        a: tf.variable(tf.transpose(tf.tensor2d(a.data, a.shape as [number, number])), true, uniqueVariableName(`${prefix}.lora_A`)),
        b: tf.variable(tf.transpose(tf.tensor2d(b.data, b.shape as [number, number])), true, uniqueVariableName(`${prefix}.lora_B`)),
      })));
    }
  }
  model.lora = { settings, adapters };
}
