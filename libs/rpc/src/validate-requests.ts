import type { GenerateRequest, LogProbsRequest, Prompt, SamplingParams, WeightsHeader } from '@posttrain/proto';
import { WeightsFormat } from '@posttrain/proto';
import { invalidArgument } from './errors';

/**
 * Validation of the request messages that more than one service receives.
 * Each check throws INVALID_ARGUMENT naming the field path as the .proto
 * spells it (`prompts[2].token_ids.ids[5]`), the value and what was expected.
 * Limits that depend on a loaded model (vocabulary size, context length) are
 * passed in, so the same checks run before and after a model is loaded.
 */
export interface RequestLimits {
  /** Token ids must be < vocabSize when known. */
  vocabSize?: number;
  maxPrompts?: number;
  maxSamplesPerPrompt?: number;
  maxNewTokens?: number;
  maxSequences?: number;
  /** UTF-8 bytes of one prompt's text (or all its messages' contents), checked before any tokenizing. */
  maxPromptBytes?: number;
}

const DEFAULT_LIMITS = { maxPrompts: 1024, maxSamplesPerPrompt: 256, maxNewTokens: 8192, maxSequences: 4096, maxPromptBytes: 1 << 20, maxMessages: 1024 };
/**
 * The smallest positive temperature: logits / T must stay finite in
 * float32 (|logit| of a few hundred / 1e-3 is far from 3.4e38); below it
 * log-probs come out NaN. 0 (greedy sampling) stays allowed where it means that.
 */
export const MIN_TEMPERATURE = 1e-3;
const ROLES = ['system', 'user', 'assistant', 'tool'];

function checkTokenIds(ids: readonly number[], field: string, limits: RequestLimits): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0) throw invalidArgument(`${field}[${i}]`, `got ${id}, expected a token id >= 0`);
    if (limits.vocabSize !== undefined && id >= limits.vocabSize) throw invalidArgument(`${field}[${i}]`, `got ${id}, expected a token id < vocab_size ${limits.vocabSize}`);
  }
}

function checkFinite(v: number, field: string): void {
  if (!Number.isFinite(v)) throw invalidArgument(field, `got ${v}, expected a finite number`);
}

export function validatePrompt(prompt: Prompt, field: string, limits: RequestLimits = {}): void {
  const input = prompt.input;
  const maxBytes = limits.maxPromptBytes ?? DEFAULT_LIMITS.maxPromptBytes;
  if (!input) throw invalidArgument(`${field}.input`, 'not set, expected one of token_ids, messages, text');
  switch (input.$case) {
    case 'tokenIds':
      if (input.value.ids.length === 0) throw invalidArgument(`${field}.token_ids.ids`, 'empty, expected at least one token id');
      checkTokenIds(input.value.ids, `${field}.token_ids.ids`, limits);
      return;
    case 'messages': {
      const msgs = input.value.messages;
      if (msgs.length === 0) throw invalidArgument(`${field}.messages.messages`, 'empty, expected at least one chat message');
      if (msgs.length > DEFAULT_LIMITS.maxMessages) throw invalidArgument(`${field}.messages.messages`, `${msgs.length} messages, expected at most ${DEFAULT_LIMITS.maxMessages}`);
      let bytes = 0;
      msgs.forEach((m, i) => {
        if (!ROLES.includes(m.role)) throw invalidArgument(`${field}.messages.messages[${i}].role`, `got "${m.role.slice(0, 40)}", expected one of ${ROLES.join(', ')}`);
        bytes += Buffer.byteLength(m.content, 'utf8');
      });
      if (bytes > maxBytes) throw invalidArgument(`${field}.messages.messages`, `${bytes} bytes of content, expected at most ${maxBytes}`);
      return;
    }
    case 'text': {
      if (input.value.length === 0) throw invalidArgument(`${field}.text`, 'empty, expected a non-empty prompt');
      const bytes = Buffer.byteLength(input.value, 'utf8');
      if (bytes > maxBytes) throw invalidArgument(`${field}.text`, `${bytes} bytes, expected at most ${maxBytes}`);
      return;
    }
  }
}

export function validateSamplingParams(s: SamplingParams | undefined, field: string, limits: RequestLimits = {}): void {
  if (!s) return;
  const maxNew = limits.maxNewTokens ?? DEFAULT_LIMITS.maxNewTokens;
  if (s.temperature !== undefined) {
    checkFinite(s.temperature, `${field}.temperature`);
    if (s.temperature < 0 || (s.temperature > 0 && s.temperature < MIN_TEMPERATURE)) throw invalidArgument(`${field}.temperature`, `got ${s.temperature}, expected 0 (greedy) or >= ${MIN_TEMPERATURE}`);
  }
  if (s.topP !== undefined) {
    checkFinite(s.topP, `${field}.top_p`);
    if (s.topP <= 0 || s.topP > 1) throw invalidArgument(`${field}.top_p`, `got ${s.topP}, expected a value in (0, 1]`);
  }
  if (s.topK < 0) throw invalidArgument(`${field}.top_k`, `got ${s.topK}, expected >= 0 (0 disables top-k)`);
  if (s.maxNewTokens !== undefined && (s.maxNewTokens < 1 || s.maxNewTokens > maxNew)) throw invalidArgument(`${field}.max_new_tokens`, `got ${s.maxNewTokens}, expected 1..${maxNew}`);
  s.stop.forEach((str, i) => {
    if (str.length === 0) throw invalidArgument(`${field}.stop[${i}]`, 'empty, expected a non-empty stop string');
  });
  checkTokenIds(s.stopTokenIds, `${field}.stop_token_ids`, limits);
  if (s.seed !== undefined && (!Number.isSafeInteger(s.seed) || s.seed < 0)) throw invalidArgument(`${field}.seed`, `got ${s.seed}, expected an integer in [0, 2^53)`);
}

export function validateGenerateRequest(req: GenerateRequest, limits: RequestLimits = {}): void {
  const maxPrompts = limits.maxPrompts ?? DEFAULT_LIMITS.maxPrompts;
  const maxN = limits.maxSamplesPerPrompt ?? DEFAULT_LIMITS.maxSamplesPerPrompt;
  if (req.prompts.length === 0) throw invalidArgument('prompts', 'empty, expected at least one prompt');
  if (req.prompts.length > maxPrompts) throw invalidArgument('prompts', `got ${req.prompts.length} prompts, expected at most ${maxPrompts}`);
  req.prompts.forEach((p, i) => validatePrompt(p, `prompts[${i}]`, limits));
  if (!Number.isInteger(req.n) || req.n < 0 || req.n > maxN) throw invalidArgument('n', `got ${req.n}, expected 1..${maxN} (0 means 1)`);
  validateSamplingParams(req.sampling, 'sampling', limits);
  if (req.minWeightsVersion !== undefined && req.minWeightsVersion < 0) throw invalidArgument('min_weights_version', `got ${req.minWeightsVersion}, expected >= 0`);
}

export function validateLogProbsRequest(req: LogProbsRequest, limits: RequestLimits = {}): void {
  const maxSeq = limits.maxSequences ?? DEFAULT_LIMITS.maxSequences;
  if (req.sequences.length === 0) throw invalidArgument('sequences', 'empty, expected at least one sequence');
  if (req.sequences.length > maxSeq) throw invalidArgument('sequences', `got ${req.sequences.length} sequences, expected at most ${maxSeq}`);
  req.sequences.forEach((s, i) => {
    if (s.completionIds.length === 0) throw invalidArgument(`sequences[${i}].completion_ids`, 'empty, expected at least one completion token to score');
    if (s.promptIds.length === 0 && s.completionIds.length < 2) throw invalidArgument(`sequences[${i}].prompt_ids`, 'empty with a one-token completion: the first token has no context to be scored in');
    checkTokenIds(s.promptIds, `sequences[${i}].prompt_ids`, limits);
    checkTokenIds(s.completionIds, `sequences[${i}].completion_ids`, limits);
  });
  if (req.temperature !== undefined) {
    checkFinite(req.temperature, 'temperature');
    if (req.temperature < MIN_TEMPERATURE) throw invalidArgument('temperature', `got ${req.temperature}, expected >= ${MIN_TEMPERATURE}`);
  }
  if (req.minWeightsVersion !== undefined && req.minWeightsVersion < 0) throw invalidArgument('min_weights_version', `got ${req.minWeightsVersion}, expected >= 0`);
}

/** The header chunk of a LoadWeights upload. */
export function validateWeightsHeader(h: WeightsHeader, maxBytes: number): void {
  if (!Number.isSafeInteger(h.version) || h.version <= 0) throw invalidArgument('header.version', `got ${h.version}, expected an integer > 0`);
  if (h.format !== WeightsFormat.SAFETENSORS_FULL && h.format !== WeightsFormat.LORA_ADAPTER) throw invalidArgument('header.format', `got ${h.format}, expected WEIGHTS_FORMAT_SAFETENSORS_FULL or WEIGHTS_FORMAT_LORA_ADAPTER`);
  if (!Number.isSafeInteger(h.totalBytes) || h.totalBytes <= 0 || h.totalBytes > maxBytes) throw invalidArgument('header.total_bytes', `got ${h.totalBytes}, expected 1..${maxBytes}`);
  if (!/^[0-9a-f]{64}$/.test(h.sha256)) throw invalidArgument('header.sha256', `got "${h.sha256.slice(0, 80)}", expected 64 lowercase hex characters`);
  if (h.format === WeightsFormat.LORA_ADAPTER) {
    if (!h.adapterConfigJson) throw invalidArgument('header.adapter_config_json', 'empty, required for WEIGHTS_FORMAT_LORA_ADAPTER');
    try {
      JSON.parse(h.adapterConfigJson);
    } catch (err) {
      throw invalidArgument('header.adapter_config_json', `not valid JSON: ${(err as Error).message}`);
    }
  }
}
