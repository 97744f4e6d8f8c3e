/**
 * PolicySampler's wire messages to and from @posttrain/serving's domain types.
 * Requests arrive already validated against the wire's rules
 * (@posttrain/rpc's validate-requests); text and chat prompts are tokenised
 * here with the served model's tokenizer, and the engine's admission checks
 * the rest against the model.
 */
import { FinishReason, WeightsFormat, type Completion, type GenerateRequest, type Prompt, type WeightsHeader } from '@posttrain/proto';
import { invalidArgument } from '@posttrain/rpc';
import { invalidField, tokenizePrompt, type GeneratedCompletion, type GenerationRequest, type ServedModel, type WeightsFormatName, type WeightsUpload } from '@posttrain/serving';

function promptTokenIds(prompt: Prompt, served: ServedModel, field: string): readonly number[] {
  const input = prompt.input;
  if (!input) throw invalidField(`${field}.input`, 'not set, expected one of token_ids, messages, text');
  switch (input.$case) {
    case 'tokenIds':
      return input.value.ids;
    case 'text':
      return tokenizePrompt(served, { text: input.value }, field);
    case 'messages':
      return tokenizePrompt(served, { messages: input.value.messages }, field);
  }
}

/** The domain request of a GenerateRequest; throws ServingError (invalid-argument) for a prompt that cannot be tokenised. */
export function toGenerationRequest(request: GenerateRequest, served: ServedModel): GenerationRequest {
  const sampling = request.sampling;
  return {
    prompts: request.prompts.map((prompt, index) => promptTokenIds(prompt, served, `prompts[${index}]`)),
    samplesPerPrompt: request.n === 0 ? 1 : request.n,
    sampling: sampling && {
      temperature: sampling.temperature,
      topK: sampling.topK,
      topP: sampling.topP,
      maxNewTokens: sampling.maxNewTokens,
      stopTokenIds: sampling.stopTokenIds,
      stopStrings: sampling.stop,
      seed: sampling.seed,
      logprobs: sampling.logprobs,
    },
    minWeightsVersion: request.minWeightsVersion,
  };
}

const FINISH_REASONS: Record<GeneratedCompletion['finishReason'], FinishReason> = { stop: FinishReason.STOP, length: FinishReason.LENGTH };

export function toWireCompletion(completion: GeneratedCompletion): Completion {
  return { ...completion, finishReason: FINISH_REASONS[completion.finishReason] };
}

const WEIGHTS_FORMATS: Record<WeightsFormatName | 'none', WeightsFormat> = { none: WeightsFormat.UNSPECIFIED, 'safetensors-full': WeightsFormat.SAFETENSORS_FULL, 'lora-adapter': WeightsFormat.LORA_ADAPTER };

export function toWireWeightsFormat(format: WeightsFormatName | 'none'): WeightsFormat {
  return WEIGHTS_FORMATS[format];
}

/** The domain upload of a (validated) WeightsHeader. */
export function toWeightsUpload(header: WeightsHeader): WeightsUpload {
  const format = header.format === WeightsFormat.SAFETENSORS_FULL ? 'safetensors-full' : header.format === WeightsFormat.LORA_ADAPTER ? 'lora-adapter' : undefined;
  if (!format) throw invalidArgument('header.format', `got ${header.format}, expected WEIGHTS_FORMAT_SAFETENSORS_FULL or WEIGHTS_FORMAT_LORA_ADAPTER`);
  return { version: header.version, sha256: header.sha256, format, adapterConfigJson: header.adapterConfigJson, manifest: header.manifest };
}
