/**
 * Hugging Face checkpoint directories: config.json, model.safetensors (or the
 * sharded model.safetensors.index.json form), generation_config.json, and the
 * tokenizer files, which are carried through unchanged.
 *
 * saveModel is atomic: everything is written to a sibling temp directory that
 * then replaces the target by rename, so a crash leaves either the old or the
 * new checkpoint, never a mix.
 */
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathExists, readSafetensorsCheckpoint, writeDirAtomic, writeSafetensorsCheckpoint } from '@posttrain/safetensors';
import type { ModelConfig, ModelShape } from './model-config';
import { countParameters, createModelConfig, modelConfigToJson, parseModelConfig } from './model-config';
import type { GenerationDefaults, ModelHeads } from './llama-model';
import { LlamaModel, initModel, modelFromHfTensors, modelToHfTensors } from './llama-model';
import { checkModelFiles } from './check-model-files';

/** Files besides the weights that belong to a model directory and are copied through on save. */
export const ASSET_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json', 'chat_template.jinja'] as const;

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

/** Reads and validates `dir/config.json`. */
export async function readModelConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, 'config.json');
  return parseModelConfig(await readJson(path), path);
}

function headsFor(config: ModelConfig): ModelHeads {
  const seqCls = config.architecture.endsWith('ForSequenceClassification');
  return { lm: !seqCls, score: seqCls };
}

/** Parses generation_config.json's sampling defaults; `source` names the file in errors. */
export function parseGenerationConfig(raw: unknown, source: string, config: ModelConfig): GenerationDefaults {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${source}: expected a JSON object`);
  const r = raw as Record<string, unknown>;
  const ids = (key: string, v: unknown): number[] => {
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    for (const x of list) {
      if (!Number.isInteger(x) || (x as number) < 0 || (x as number) >= config.vocabSize) {
        throw new Error(`${source}: "${key}" is ${JSON.stringify(v)}; expected token id(s) in [0, ${config.vocabSize})`);
      }
    }
    return list as number[];
  };
  const num = (key: string, ok: (x: number) => boolean, expected: string): number | undefined => {
    const v = r[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !ok(v)) throw new Error(`${source}: "${key}" is ${JSON.stringify(v)}; expected ${expected}`);
    return v;
  };
  const eos = ids('eos_token_id', r.eos_token_id);
  const pad = ids('pad_token_id', r.pad_token_id);
  const out: GenerationDefaults = {
    eosTokenIds: eos.length > 0 ? eos : config.eosTokenId === null ? [] : ([] as number[]).concat(config.eosTokenId),
    padTokenId: pad.length > 0 ? pad[0] : config.padTokenId,
  };
  const doSample = r.do_sample;
  const temperature = num('temperature', (x) => x >= 0 && Number.isFinite(x), 'a number >= 0');
  if (temperature !== undefined) out.temperature = doSample === false ? 0 : temperature;
  else if (doSample === false) out.temperature = 0;
  const topK = num('top_k', (x) => Number.isInteger(x) && x >= 0, 'an integer >= 0');
  if (topK !== undefined) out.topK = topK;
  const topP = num('top_p', (x) => x > 0 && x <= 1, 'a number in (0, 1]');
  if (topP !== undefined) out.topP = topP;
  return out;
}

/** Loads a model directory (HF layout). Tokenizer files are kept as assets for saveModel. */
export async function loadModel(dir: string): Promise<LlamaModel> {
  const config = await readModelConfig(dir);
  const heads = headsFor(config);
  const assets = await readAssets(dir);
  checkModelFiles(dir, config, assets);
  const { tensors } = await readSafetensorsCheckpoint(dir);
  if (tensors.has('score.weight')) heads.score = true;
  if (tensors.has('lm_head.weight') && !config.tieWordEmbeddings) heads.lm = true;
  if (config.tieWordEmbeddings && tensors.has('lm_head.weight')) {
    // Some exporters store the tied head anyway; accept it only as the exact copy it must be.
    const head = tensors.get('lm_head.weight')!.data;
    const emb = tensors.get('model.embed_tokens.weight')?.data;
    if (!emb || emb.length !== head.length || emb.some((x, i) => x !== head[i])) {
      throw new Error(`${dir}: tensor lm_head.weight differs from model.embed_tokens.weight but config.json has tie_word_embeddings: true`);
    }
    tensors.delete('lm_head.weight');
  }
  const hf = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of tensors) {
    // Older exports carry the rotary frequency buffer; it is derived from rope_theta, and HF ignores it on load too.
    if (/^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(name)) continue;
    hf.set(name, { shape: t.shape, data: t.data });
  }
  const model = modelFromHfTensors(config, heads, hf, dir, assets);
  const gen = assets.get('generation_config.json');
  if (gen !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(gen);
    } catch (e) {
      model.dispose();
      throw new Error(`${join(dir, 'generation_config.json')}: invalid JSON (${(e as Error).message})`);
    }
    model.generationDefaults = parseGenerationConfig(raw, join(dir, 'generation_config.json'), config);
  }
  return model;
}

/** The non-weight files of a model directory, by name. */
async function readAssets(dir: string): Promise<Map<string, string>> {
  const assets = new Map<string, string>();
  for (const f of ASSET_FILES) {
    const p = join(dir, f);
    if (await pathExists(p)) assets.set(f, await readFile(p, 'utf8'));
  }
  return assets;
}

export interface SaveModelOptions {
  /** Shard the weights above this many bytes per file (model.safetensors.index.json); default one file up to 2 GiB. */
  maxShardBytes?: number;
  /** config.json fields that replace the model's own (a trained reward model's score statistics). */
  config?: Partial<Pick<ModelConfig, 'rewardStats' | 'normalizeReward'>>;
}

/**
 * Writes the model in HF layout (base weights; merge or save LoRA adapters separately) atomically:
 * a temp sibling directory is filled and then renamed over `dir`.
 */
export async function saveModel(model: LlamaModel, dir: string, options: SaveModelOptions = {}): Promise<void> {
  await writeDirAtomic(dir, async (tmp) => {
    const config = { ...modelConfigToJson({ ...model.config, ...options.config }) };
    await writeFile(join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    await writeSafetensorsCheckpoint(tmp, modelToHfTensors(model), { maxShardBytes: options.maxShardBytes, metadata: { format: 'pt' } });
    for (const [name, text] of model.assets) await writeFile(join(tmp, name), text);
    if (!model.assets.has('generation_config.json')) {
      const g = model.generationDefaults;
      const gen: Record<string, unknown> = {
        bos_token_id: model.config.bosTokenId,
        eos_token_id: g.eosTokenIds.length === 1 ? g.eosTokenIds[0] : g.eosTokenIds.length === 0 ? null : g.eosTokenIds,
        pad_token_id: g.padTokenId,
      };
      if (g.temperature !== undefined) gen.temperature = g.temperature;
      if (g.topK !== undefined) gen.top_k = g.topK;
      if (g.topP !== undefined) gen.top_p = g.topP;
      await writeFile(join(tmp, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
    }
  });
}

export interface InitModelDirOptions {
  seed: number | string;
  /** Extra files to write beside the weights, e.g. tokenizer.json from the built-in tokenizer. */
  assets?: Record<string, string>;
}

/** Writes a randomly initialised model of the given shape (or config) to `dir` in HF layout; returns its config. */
export async function initModelDir(dir: string, shape: ModelShape | ModelConfig, options: InitModelDirOptions): Promise<ModelConfig> {
  const config = 'architecture' in shape ? (shape as ModelConfig) : createModelConfig(shape as ModelShape);
  const assets = new Map(Object.entries(options.assets ?? {}));
  for (const name of assets.keys()) {
    if (!(ASSET_FILES as readonly string[]).includes(name)) throw new Error(`assets: "${name}" is not one of ${ASSET_FILES.join(', ')}`);
  }
  checkModelFiles(dir, config, assets); // never write a directory that loadModel would refuse
  const model = initModel(config, { seed: options.seed });
  try {
    for (const [name, text] of assets) model.assets.set(name, text);
    await saveModel(model, dir);
  } finally {
    model.dispose();
  }
  return config;
}

/** Tensor names from a safetensors header, reading only the header bytes (full validation happens on load). */
async function safetensorsTensorNames(path: string): Promise<Set<string>> {
  const fh = await open(path, 'r');
  try {
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const len = Number(lenBuf.readBigUInt64LE(0));
    const { size } = await fh.stat();
    if (len < 2 || len > size - 8) throw new Error(`${path}: header length ${len} does not fit the ${size}-byte file`);
    const header = Buffer.alloc(len);
    await fh.read(header, 0, len, 8);
    const parsed = JSON.parse(header.toString('utf8')) as Record<string, unknown>;
    return new Set(Object.keys(parsed).filter((k) => k !== '__metadata__'));
  } finally {
    await fh.close();
  }
}

export interface ModelInfo {
  dir: string;
  config: ModelConfig;
  heads: ModelHeads;
  parameterCount: number;
  /** Weight files present (model.safetensors, or the index and its shards). */
  weightFiles: string[];
  assets: string[];
}

/** Config and parameter count of a model directory, without loading the weights. */
export async function modelInfo(dir: string): Promise<ModelInfo> {
  const config = await readModelConfig(dir);
  const heads = headsFor(config);
  const weightFiles: string[] = [];
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (await pathExists(indexPath)) {
    const index = (await readJson(indexPath)) as { weight_map?: Record<string, string> };
    if (typeof index !== 'object' || index === null || typeof index.weight_map !== 'object' || index.weight_map === null) {
      throw new Error(`${indexPath}: "weight_map" is missing; expected an object of tensor name -> file`);
    }
    if ('score.weight' in index.weight_map) heads.score = true;
    if ('lm_head.weight' in index.weight_map && !config.tieWordEmbeddings) heads.lm = true;
    weightFiles.push('model.safetensors.index.json', ...new Set(Object.values(index.weight_map)));
  } else if (await pathExists(join(dir, 'model.safetensors'))) {
    weightFiles.push('model.safetensors');
    const names = await safetensorsTensorNames(join(dir, 'model.safetensors'));
    if (names.has('score.weight')) heads.score = true;
    if (names.has('lm_head.weight') && !config.tieWordEmbeddings) heads.lm = true;
  } else {
    throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
  }
  const assets = await readAssets(dir);
  checkModelFiles(dir, config, assets);
  return { dir, config, heads, parameterCount: countParameters(config, heads), weightFiles, assets: [...assets.keys()] };
}
