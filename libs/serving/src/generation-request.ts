/**
 * What the generation engine takes and gives, as plain types: prompts as
 * token ids, sampling settings, completions. The services convert their wire
 * messages to and from these; nothing here knows gRPC or protobuf.
 *
 * Errors about a request (ServingError) name the field as the wire spells it
 * (`prompts[1].token_ids.ids[3]`, `sampling.top_p`), so a service passes the
 * name on unchanged.
 */

export interface SamplingSettings {
  /** Softmax temperature; 0 = greedy. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off (the default). */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 = off (the default). */
  topP?: number;
  /** Tokens to generate at most; default (and upper bound) the engine's maxNewTokens. */
  maxNewTokens?: number;
  /** Tokens that end a completion (kept in it), besides the model's eos ids. */
  stopTokenIds?: readonly number[];
  /** Strings that end a completion; its text stops right before the first one found. */
  stopStrings?: readonly string[];
  /** Seed of the request's random streams, an integer in [0, 2^53); default: a fresh one. */
  seed?: number;
  /** Report the log-prob of every sampled token. Default false. */
  logprobs?: boolean;
}

export interface GenerationRequest {
  /** Token ids of each prompt (a text or chat prompt tokenised with tokenizePrompt). */
  prompts: readonly (readonly number[])[];
  /** Completions per prompt; default 1. */
  samplesPerPrompt?: number;
  sampling?: SamplingSettings;
  /** Refuse (failed-precondition) while the loaded weights are older than this version. */
  minWeightsVersion?: number;
}

/** Why a completion ended: a stop token or stop string, or the token limit (max_new_tokens or the context). */
export type CompletionFinish = 'stop' | 'length';

export interface GeneratedCompletion {
  promptIndex: number;
  sampleIndex: number;
  promptTokenIds: number[];
  /** Generated tokens (a stop token, when hit, is the last one). */
  tokenIds: number[];
  /** Decoded text without special tokens, cut before a stop string; '' when the model has no tokenizer. */
  text: string;
  /** log p of each token under softmax(logits / temperature); empty unless asked for. */
  logprobs: number[];
  finishReason: CompletionFinish;
  /** The stop string that ended the completion, else ''. */
  stopString: string;
  /** Weights version that produced every token of the completion. */
  weightsVersion: number;
}
