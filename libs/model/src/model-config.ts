/**
 * The model's configuration, parsed from (and written back to) a Hugging Face
 * `config.json` of the Llama family: `llama`, `qwen2`, `qwen3` and `mistral`.
 *
 * Unknown keys are rejected, as are known keys whose value selects something
 * this implementation does not compute (rope_scaling, another activation, mlp
 * biases, ...): silently ignoring them would run a different model than the
 * checkpoint was trained as.
 */

export type ModelType = 'llama' | 'qwen2' | 'qwen3' | 'mistral';

export interface ModelConfig {
  modelType: ModelType;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2 always; Llama with attention_bias). */
  qkvBias: boolean;
  /** o_proj carries a bias (Llama and Qwen3 attention_bias applies to o_proj too). */
  oBias: boolean;
  /** Qwen3: q and k are RMS-normalised over the head dimension (q_norm, k_norm: [head_dim]) before RoPE. */
  qkNorm: boolean;
  /** Mistral's sliding window (keys further back than this are masked); null = none. */
  slidingWindow: number | null;
  initializerRange: number;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  /** `architectures[0]` as read (e.g. LlamaForCausalLM, Qwen2ForSequenceClassification). */
  architecture: string;
  /**
   * A reward model's score statistics (OpenRLHF's `mean` and `std` keys):
   * the mean and standard deviation of its scores on its held-out pairs
   * (chosen and rejected), written when the reward model was trained. Absent
   * or null: none recorded.
   */
  rewardStats?: RewardStats | null;
  /** OpenRLHF's `normalize_reward`: a served score is (score - rewardStats.mean) / rewardStats.std. */
  normalizeReward?: boolean;
}

/** The mean and standard deviation of a reward model's scores. */
export interface RewardStats {
  mean: number;
  std: number;
}

/** The statistics a reward model's (or its critic's) outputs are standardised by: rewardStats when normalizeReward, else null (raw). */
export function rewardNormalization(c: ModelConfig): RewardStats | null {
  return c.normalizeReward && c.rewardStats ? c.rewardStats : null;
}

/** Keys of config.json we understand or that carry no meaning for the forward pass. */
const KNOWN_KEYS = new Set([
  '_name_or_path', '_commit_hash', '_attn_implementation_autoset', '_attn_implementation', 'transformers_version',
  'torch_dtype', 'dtype', 'use_bfloat16', 'use_cache', 'return_dict', 'output_hidden_states', 'output_attentions',
  'torchscript', 'tf_legacy_loss', 'pruned_heads', 'chunk_size_feed_forward', 'is_encoder_decoder', 'is_decoder',
  'cross_attention_hidden_size', 'add_cross_attention', 'tie_encoder_decoder', 'finetuning_task', 'id2label',
  'label2id', 'num_labels', 'tokenizer_class', 'prefix', 'sep_token_id', 'decoder_start_token_id',
  'task_specific_params', 'problem_type', 'max_length', 'min_length', 'do_sample', 'early_stopping', 'num_beams',
  'num_beam_groups', 'diversity_penalty', 'temperature', 'top_k', 'top_p', 'typical_p', 'repetition_penalty',
  'length_penalty', 'no_repeat_ngram_size', 'encoder_no_repeat_ngram_size', 'bad_words_ids',
  'num_return_sequences', 'output_scores', 'return_dict_in_generate', 'forced_bos_token_id', 'forced_eos_token_id',
  'remove_invalid_values', 'exponential_decay_length_penalty', 'suppress_tokens', 'begin_suppress_tokens',
  'max_window_layers', 'model_type', 'architectures', 'vocab_size', 'hidden_size', 'intermediate_size',
  'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'max_position_embeddings',
  'rms_norm_eps', 'rope_theta', 'rope_scaling', 'rope_parameters', 'hidden_act', 'tie_word_embeddings',
  'attention_bias', 'attention_dropout', 'mlp_bias', 'pretraining_tp', 'sliding_window', 'use_sliding_window',
  'initializer_range', 'bos_token_id', 'eos_token_id', 'pad_token_id', 'layer_types',
  // OpenRLHF's reward-model keys: its score statistics and whether scores are served standardised by them.
  'normalize_reward', 'mean', 'std',
]);

/** The transformers class-name prefix of each model type (LlamaForCausalLM, Qwen3ForSequenceClassification, ...). */
const ARCHITECTURE_PREFIX: Record<ModelType, string> = { llama: 'Llama', qwen2: 'Qwen2', qwen3: 'Qwen3', mistral: 'Mistral' };

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

function fail(source: string, key: string, value: unknown, expected: string): never {
  throw new ModelConfigError(`${source}: "${key}" is ${JSON.stringify(value)}; expected ${expected}`);
}

function positiveInt(raw: Record<string, unknown>, key: string, source: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(source, key, raw[key], 'a positive integer');
  return v;
}

function positiveNumber(raw: Record<string, unknown>, key: string, source: string, fallback: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(source, key, raw[key], 'a positive number');
  return v;
}

function bool(raw: Record<string, unknown>, key: string, source: string, fallback: boolean): boolean {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'boolean') fail(source, key, raw[key], 'true or false');
  return v;
}

function tokenId(raw: Record<string, unknown>, key: string, source: string): number | null {
  const v = raw[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(source, key, v, 'a token id (integer >= 0) or null');
  return v;
}

/** Parses and validates a config.json object; `source` names the file in errors. */
export function parseModelConfig(raw: unknown, source = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ModelConfigError(`${source}: expected a JSON object, got ${JSON.stringify(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!KNOWN_KEYS.has(key)) fail(source, key, r[key], 'no such key (unknown config key for llama/qwen2/mistral)');
  }
  const modelType = r.model_type;
  if (modelType !== 'llama' && modelType !== 'qwen2' && modelType !== 'qwen3' && modelType !== 'mistral') {
    fail(source, 'model_type', modelType, 'one of "llama", "qwen2", "qwen3", "mistral"');
  }
  const hiddenAct = r.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu') fail(source, 'hidden_act', hiddenAct, '"silu" (only SwiGLU MLPs are supported)');
  if (r.rope_scaling !== undefined && r.rope_scaling !== null) {
    fail(source, 'rope_scaling', r.rope_scaling, 'null (rope scaling is not supported)');
  }
  let ropeTheta = positiveNumber(r, 'rope_theta', source, 10000);
  if (r.rope_parameters !== undefined && r.rope_parameters !== null) {
    const p = r.rope_parameters;
    if (typeof p !== 'object' || Array.isArray(p)) fail(source, 'rope_parameters', p, 'an object');
    const rp = p as Record<string, unknown>;
    if ((rp.rope_type ?? 'default') !== 'default') {
      fail(source, 'rope_parameters.rope_type', rp.rope_type, '"default" (rope scaling is not supported)');
    }
    if (rp.rope_theta !== undefined) ropeTheta = positiveNumber(rp, 'rope_theta', `${source} rope_parameters`, 10000);
  }
  if ((r.mlp_bias ?? false) !== false) fail(source, 'mlp_bias', r.mlp_bias, 'false (MLP biases are not supported)');
  if ((r.pretraining_tp ?? 1) !== 1) fail(source, 'pretraining_tp', r.pretraining_tp, '1');
  const attnDropout = r.attention_dropout ?? 0;
  if (attnDropout !== 0) fail(source, 'attention_dropout', attnDropout, '0 (attention dropout is not supported)');
  if ((modelType === 'qwen2' || modelType === 'qwen3') && (r.use_sliding_window ?? false) !== false) {
    fail(source, 'use_sliding_window', r.use_sliding_window, 'false (Qwen sliding-window layers are not supported)');
  }
  if (r.layer_types !== undefined && r.layer_types !== null) {
    if (!Array.isArray(r.layer_types) || r.layer_types.some((t) => t !== 'full_attention')) {
      fail(source, 'layer_types', r.layer_types, 'every layer "full_attention"');
    }
  }
  let slidingWindow: number | null = null;
  if (modelType === 'mistral' && r.sliding_window !== undefined && r.sliding_window !== null) {
    slidingWindow = positiveInt(r, 'sliding_window', source);
  }

  const hiddenSize = positiveInt(r, 'hidden_size', source);
  const numHeads = positiveInt(r, 'num_attention_heads', source);
  const numKvHeads = positiveInt(r, 'num_key_value_heads', source, numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(source, 'num_key_value_heads', numKvHeads, `a divisor of num_attention_heads (${numHeads})`);
  }
  const defaultHeadDim = hiddenSize / numHeads;
  const headDim = r.head_dim === undefined || r.head_dim === null ? defaultHeadDim : r.head_dim;
  if (typeof headDim !== 'number' || !Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
    fail(source, 'head_dim', headDim, `an even positive integer (hidden_size / num_attention_heads = ${defaultHeadDim} by default)`);
  }
  const attentionBias = bool(r, 'attention_bias', source, false);
  const archs = r.architectures ?? [`${ARCHITECTURE_PREFIX[modelType]}ForCausalLM`];
  if (!Array.isArray(archs) || archs.length < 1 || typeof archs[0] !== 'string') {
    fail(source, 'architectures', archs, 'a non-empty list of class names');
  }
  const architecture = archs[0] as string;
  if (!/For(CausalLM|SequenceClassification)$/.test(architecture)) {
    fail(source, 'architectures', archs, 'a *ForCausalLM or *ForSequenceClassification class');
  }
  const numLabels = r.num_labels ?? (r.id2label && typeof r.id2label === 'object' ? Object.keys(r.id2label).length : 1);
  if (architecture.endsWith('ForSequenceClassification') && numLabels !== 1) {
    fail(source, 'num_labels', numLabels, '1 (a scalar head)');
  }
  const eos = r.eos_token_id;
  let eosTokenId: number | number[] | null = null;
  if (Array.isArray(eos)) {
    if (eos.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0)) fail(source, 'eos_token_id', eos, 'token ids');
    eosTokenId = eos as number[];
  } else {
    eosTokenId = tokenId(r, 'eos_token_id', source);
  }
  const rewardStats = parseRewardStats(r, source, architecture);
  const normalizeReward = bool(r, 'normalize_reward', source, false);
  if (normalizeReward && !rewardStats) fail(source, 'normalize_reward', true, 'false without "mean" and "std" (the score statistics it standardises by)');
  const vocabSize = positiveInt(r, 'vocab_size', source);
  const bosTokenId = tokenId(r, 'bos_token_id', source);
  const padTokenId = tokenId(r, 'pad_token_id', source);
  for (const [key, ids] of [['bos_token_id', [bosTokenId]], ['eos_token_id', ([] as (number | null)[]).concat(eosTokenId)], ['pad_token_id', [padTokenId]]] as const) {
    if (ids.some((id) => id !== null && id >= vocabSize)) fail(source, key, r[key], `token id(s) below "vocab_size" ${vocabSize} (the embedding has rows 0..${vocabSize - 1})`);
  }
  return {
    modelType,
    vocabSize,
    hiddenSize,
    intermediateSize: positiveInt(r, 'intermediate_size', source),
    numLayers: positiveInt(r, 'num_hidden_layers', source),
    numHeads,
    numKvHeads,
    headDim,
    maxPositionEmbeddings: positiveInt(r, 'max_position_embeddings', source, 2048),
    rmsNormEps: positiveNumber(r, 'rms_norm_eps', source, 1e-6),
    ropeTheta,
    tieWordEmbeddings: bool(r, 'tie_word_embeddings', source, false),
    qkvBias: modelType === 'qwen2' ? true : attentionBias,
    oBias: modelType === 'qwen2' ? false : attentionBias,
    qkNorm: modelType === 'qwen3',
    slidingWindow,
    initializerRange: positiveNumber(r, 'initializer_range', source, 0.02),
    bosTokenId,
    eosTokenId,
    padTokenId,
    architecture,
    ...(rewardStats ? { rewardStats, normalizeReward } : {}),
  };
}

/** `mean` and `std` of a sequence-classification config, both or neither; std > 0. */
function parseRewardStats(r: Record<string, unknown>, source: string, architecture: string): RewardStats | null {
  const has = (key: string) => r[key] !== undefined && r[key] !== null;
  if (!has('mean') && !has('std')) return null;
  if (!architecture.endsWith('ForSequenceClassification')) fail(source, has('mean') ? 'mean' : 'std', r[has('mean') ? 'mean' : 'std'], 'absent (score statistics belong to a *ForSequenceClassification reward model)');
  const mean = r.mean;
  if (typeof mean !== 'number' || !Number.isFinite(mean)) fail(source, 'mean', mean, 'a finite number (the mean reward-model score), given with "std"');
  return { mean, std: positiveNumber(r, 'std', source, Number.NaN) };
}

/** The config.json object for a config (round-trips through parseModelConfig). */
export function modelConfigToJson(c: ModelConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architectures: [c.architecture],
    model_type: c.modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    max_position_embeddings: c.maxPositionEmbeddings,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: null,
    hidden_act: 'silu',
    tie_word_embeddings: c.tieWordEmbeddings,
    initializer_range: c.initializerRange,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    pad_token_id: c.padTokenId,
    torch_dtype: 'float32',
  };
  if (c.modelType === 'llama' || c.modelType === 'qwen3') {
    if (c.qkvBias !== c.oBias) throw new ModelConfigError(`${c.modelType}: attention_bias applies to q/k/v and o together`);
    out.attention_bias = c.qkvBias;
    if (c.modelType === 'qwen3') out.use_sliding_window = false;
    out.mlp_bias = false;
  } else if (c.modelType === 'mistral') {
    out.sliding_window = c.slidingWindow;
    if (c.qkvBias || c.oBias) throw new ModelConfigError('mistral: attention biases are not part of the Mistral layout');
  } else {
    out.use_sliding_window = false;
  }
  if (c.architecture.endsWith('ForSequenceClassification')) out.num_labels = 1;
  if (c.rewardStats) {
    out.normalize_reward = c.normalizeReward ?? false;
    out.mean = c.rewardStats.mean;
    out.std = c.rewardStats.std;
  }
  return out;
}

/** Options for a fresh config; the defaults are the benchmark's tiny Llama. */
export interface ModelShape {
  modelType?: ModelType;
  vocabSize?: number;
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  maxPositionEmbeddings?: number;
  tieWordEmbeddings?: boolean;
  attentionBias?: boolean;
  ropeTheta?: number;
  rmsNormEps?: number;
  bosTokenId?: number | null;
  eosTokenId?: number | null;
  padTokenId?: number | null;
  /** 'causal-lm' (default) or 'sequence-classification' (a scalar head, no LM head). */
  task?: 'causal-lm' | 'sequence-classification';
}

/** Builds a validated config from a shape; goes through parseModelConfig so the same checks apply. */
export function createModelConfig(shape: ModelShape = {}): ModelConfig {
  const modelType = shape.modelType ?? 'llama';
  const prefix = ARCHITECTURE_PREFIX[modelType];
  const raw: Record<string, unknown> = {
    architectures: [`${prefix}${shape.task === 'sequence-classification' ? 'ForSequenceClassification' : 'ForCausalLM'}`],
    model_type: modelType,
    vocab_size: shape.vocabSize ?? 256,
    hidden_size: shape.hiddenSize ?? 256,
    intermediate_size: shape.intermediateSize ?? 688,
    num_hidden_layers: shape.numLayers ?? 4,
    num_attention_heads: shape.numHeads ?? 4,
    num_key_value_heads: shape.numKvHeads ?? shape.numHeads ?? 4,
    max_position_embeddings: shape.maxPositionEmbeddings ?? 2048,
    rms_norm_eps: shape.rmsNormEps ?? 1e-6,
    rope_theta: shape.ropeTheta ?? 10000,
    tie_word_embeddings: shape.tieWordEmbeddings ?? false,
    bos_token_id: shape.bosTokenId ?? null,
    eos_token_id: shape.eosTokenId ?? null,
    pad_token_id: shape.padTokenId ?? null,
  };
  if (modelType === 'llama' || modelType === 'qwen3') raw.attention_bias = shape.attentionBias ?? false;
  else if (shape.attentionBias !== undefined && shape.attentionBias !== (modelType === 'qwen2')) {
    throw new ModelConfigError(`attentionBias=${shape.attentionBias} is fixed by model_type ${modelType}`);
  }
  if (shape.task === 'sequence-classification') raw.num_labels = 1;
  return parseModelConfig(raw, 'model shape');
}

/** Number of parameters of a model with this config (LM head and/or score head as its architecture says). */
export function countParameters(c: ModelConfig, heads: { lm: boolean; score: boolean }): number {
  const d = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const attn = d * q + 2 * d * kv + q * d + (c.qkvBias ? q + 2 * kv : 0) + (c.oBias ? d : 0);
  const mlp = 3 * d * c.intermediateSize;
  const perLayer = attn + mlp + 2 * d + (c.qkNorm ? 2 * c.headDim : 0);
  let total = c.vocabSize * d + c.numLayers * perLayer + d;
  if (heads.lm && !c.tieWordEmbeddings) total += c.vocabSize * d;
  if (heads.score) total += d;
  return total;
}
