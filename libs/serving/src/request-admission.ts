/**
 * Admission of generation requests: every check a request passes before it
 * may join the queue, and the defaults it is resolved with. Throws
 * ServingError: invalid-argument naming the field, or failed-precondition
 * when the loaded weights are older than the request asks for.
 */
import { randomInt } from 'node:crypto';
import type { SamplingParams } from '@posttrain/model';
import type { GenerationRequest } from './generation-request';
import type { ServedModel } from './served-model';
import { invalidField, preconditionFailed } from './serving-error';

/** What admission checks a request against. */
export interface AdmissionLimits {
  /** Default and upper bound of max_new_tokens. */
  maxNewTokens: number;
  /** Most sequences (prompts x samples per prompt) in one request. */
  maxRequestSequences: number;
}

/** A request that passed admission, with every default filled in. */
export interface AdmittedRequest {
  prompts: readonly (readonly number[])[];
  samplesPerPrompt: number;
  sampling: SamplingParams;
  maxNewTokens: number;
  /** The model's eos ids and the request's stop token ids. */
  stopTokenIds: Set<number>;
  stopStrings: string[];
  logprobs: boolean;
  seed: number;
}

/** Refuses (failed-precondition) a request for weights newer than the loaded version. */
export function checkMinWeightsVersion(loadedVersion: number, minWeightsVersion: number | undefined): void {
  if (minWeightsVersion !== undefined && loadedVersion < minWeightsVersion) {
    throw preconditionFailed(`loaded weights version ${loadedVersion} is older than min_weights_version ${minWeightsVersion}`, 'min_weights_version');
  }
}

function checkTokenId(id: number, vocabSize: number, field: string): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw invalidField(field, `got ${id}, expected a token id in [0, ${vocabSize})`);
}

/** Validates a request against the served model, the limits and the loaded weights version, and resolves its defaults. */
export function admitRequest(request: GenerationRequest, served: ServedModel, limits: AdmissionLimits, loadedVersion: number): AdmittedRequest {
  checkMinWeightsVersion(loadedVersion, request.minWeightsVersion);
  const { vocabSize, maxPositionEmbeddings } = served.model.config;
  const promptCount = request.prompts.length;
  if (promptCount === 0) throw invalidField('prompts', 'empty, expected at least one prompt');
  const samplesPerPrompt = request.samplesPerPrompt ?? 1;
  if (!Number.isInteger(samplesPerPrompt) || samplesPerPrompt < 1) throw invalidField('n', `got ${samplesPerPrompt}, expected >= 1`);
  const sequences = promptCount * samplesPerPrompt;
  if (sequences > limits.maxRequestSequences) throw invalidField('n', `${promptCount} prompts x n=${samplesPerPrompt} = ${sequences} sequences, more than ${limits.maxRequestSequences} per request`);
  const settings = request.sampling ?? {};
  const temperature = settings.temperature ?? 1;
  const topP = settings.topP ?? 1;
  const topK = settings.topK ?? 0;
  if (!(Number.isFinite(temperature) && temperature >= 0)) throw invalidField('sampling.temperature', `got ${temperature}, expected >= 0 (0 means greedy)`);
  if (!(Number.isFinite(topP) && topP > 0 && topP <= 1)) throw invalidField('sampling.top_p', `got ${topP}, expected a value in (0, 1]`);
  if (!Number.isInteger(topK) || topK < 0) throw invalidField('sampling.top_k', `got ${topK}, expected >= 0 (0 disables top-k)`);
  const maxNewTokens = settings.maxNewTokens ?? limits.maxNewTokens;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1 || maxNewTokens > limits.maxNewTokens) throw invalidField('sampling.max_new_tokens', `got ${maxNewTokens}, expected 1..${limits.maxNewTokens}`);
  const stopTokenIds = settings.stopTokenIds ?? [];
  stopTokenIds.forEach((id, index) => checkTokenId(id, vocabSize, `sampling.stop_token_ids[${index}]`));
  const stopStrings = settings.stopStrings ?? [];
  stopStrings.forEach((stop, index) => {
    if (stop.length === 0) throw invalidField(`sampling.stop[${index}]`, 'empty, expected a non-empty stop string');
  });
  if (stopStrings.length > 0 && !served.tokenizer) throw invalidField('sampling.stop', 'this model has no tokenizer.json, so completions have no text to search; use stop_token_ids');
  const seed = settings.seed ?? randomInt(2 ** 47);
  if (!Number.isSafeInteger(seed) || seed < 0) throw invalidField('sampling.seed', `got ${seed}, expected an integer in [0, 2^53)`);
  request.prompts.forEach((ids, promptIndex) => {
    const field = `prompts[${promptIndex}]`;
    if (ids.length === 0) throw invalidField(`${field}.token_ids.ids`, 'empty, expected at least one token id');
    ids.forEach((id, index) => checkTokenId(id, vocabSize, `${field}.token_ids.ids[${index}]`));
    if (ids.length >= maxPositionEmbeddings) throw invalidField(field, `${ids.length} prompt tokens leave no room to generate within max_position_embeddings ${maxPositionEmbeddings}`);
  });
  return {
    prompts: request.prompts,
    samplesPerPrompt,
    sampling: { temperature, topK, topP },
    maxNewTokens,
    stopTokenIds: new Set([...served.model.generationDefaults.eosTokenIds, ...stopTokenIds]),
    stopStrings: [...stopStrings],
    logprobs: settings.logprobs ?? false,
    seed,
  };
}
