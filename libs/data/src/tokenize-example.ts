import type { TruncationPolicy } from './data-config';
import type { DataLine } from './data-record';
import type { ChatMessage, TokenizerLike } from './tokenizer-like';

/**
 * One SFT sequence. `lossMask[i] = 1` when token i is a training target (the
 * loss shifts: logits at i-1 predict inputIds[i]); lossMask[0] is always 0,
 * since nothing predicts a sequence's first token.
 */
export interface SftExample {
  line: number;
  inputIds: number[];
  lossMask: number[];
}

/** A preference pair: the prompt once, and each response's tokens that follow it (ending with EOS). */
export interface PreferenceExample {
  line: number;
  promptIds: number[];
  chosenIds: number[];
  rejectedIds: number[];
}

/** A prompt for generation, with the ground truth verifiable rewards use. */
export interface PromptExample {
  line: number;
  promptIds: number[];
  /** The prompt as it was in the data (rewards and logs want the text). */
  prompt: string | ChatMessage[];
  groundTruth: string | null;
}

/** Either an example (maybe truncated) or why the line was dropped. */
export type TokenizeResult<E> = { ok: true; example: E; truncated: boolean } | { ok: false; reason: string };

export interface LengthOptions {
  /** Maximum tokens per sequence; null for no limit. */
  maxLength: number | null;
  truncation: TruncationPolicy;
}

export interface SftTokenizeOptions extends LengthOptions {
  /** Conversations ({"messages"}): train on assistant tokens only (from the chat template's assistant mask). */
  assistantOnlyLoss: boolean;
  /** Prompt-completion data: train on completion tokens only. */
  completionOnlyLoss: boolean;
}

function withEos(ids: number[], eos: number): number[] {
  return ids.length > 0 && ids[ids.length - 1] === eos ? ids : [...ids, eos];
}

function startsWith(ids: readonly number[], prefix: readonly number[]): boolean {
  if (prefix.length > ids.length) return false;
  for (let i = 0; i < prefix.length; i++) if (ids[i] !== prefix[i]) return false;
  return true;
}

/**
 * Tokens of prompt + response with the chat template, split where the prompt
 * (rendered with the generation prompt) ends. The template must render the
 * prompt the same alone and followed by the response, or the split would be
 * a guess: then null. No assistant turns are located here, so earlier
 * assistant turns in the prompt never stop a template from working.
 */
function splitChat(tokenizer: TokenizerLike, prompt: readonly ChatMessage[], response: readonly ChatMessage[]): { promptIds: number[]; responseIds: number[] } | null {
  const promptIds = tokenizer.encodeChatIds(prompt, { addGenerationPrompt: true });
  const full = tokenizer.encodeChatIds([...prompt, ...response]);
  if (!startsWith(full, promptIds)) return null;
  return { promptIds, responseIds: full.slice(promptIds.length) };
}

const TEMPLATE_MISMATCH =
  'the chat template renders the prompt (with the generation prompt) differently from the start of prompt + response, so the response tokens cannot be located';

/**
 * Tokenizes a language-modelling or prompt-completion record for SFT:
 * text trains on every token; conversations on the assistant turns
 * (`encodeChat`'s assistant mask) or everything; prompt-completion on the
 * completion (and its EOS) or everything. Too long: truncated at the end or
 * dropped, per the options; an example left with nothing to train on is dropped.
 */
export function tokenizeSft(data: DataLine, tokenizer: TokenizerLike, options: SftTokenizeOptions): TokenizeResult<SftExample> {
  const { record } = data;
  let inputIds: number[];
  let lossMask: number[];
  if (record.format === 'language-modeling' && record.style === 'standard') {
    inputIds = withEos(tokenizer.encode(record.text), tokenizer.eosTokenId);
    lossMask = inputIds.map(() => 1);
  } else if (record.format === 'language-modeling') {
    if (options.assistantOnlyLoss) {
      const chat = tokenizer.encodeChat(record.messages);
      if (chat.assistantMask.length !== chat.ids.length) {
        throw new Error(`tokenizer.encodeChat returned ${chat.ids.length} ids but ${chat.assistantMask.length} mask entries (line ${data.line})`);
      }
      inputIds = chat.ids;
      lossMask = chat.assistantMask.map((m) => (m ? 1 : 0));
    } else {
      // The loss covers every token, so no assistant turn needs locating.
      inputIds = tokenizer.encodeChatIds(record.messages);
      lossMask = inputIds.map(() => 1);
    }
  } else if (record.format === 'prompt-completion' && record.style === 'standard') {
    const promptIds = tokenizer.encode(record.prompt);
    const completionIds = withEos(tokenizer.encode(record.completion, { addSpecialTokens: false }), tokenizer.eosTokenId);
    inputIds = [...promptIds, ...completionIds];
    lossMask = inputIds.map((_, i) => (!options.completionOnlyLoss || i >= promptIds.length ? 1 : 0));
  } else if (record.format === 'prompt-completion') {
    const split = splitChat(tokenizer, record.prompt, record.completion);
    if (split === null) return { ok: false, reason: TEMPLATE_MISMATCH };
    inputIds = [...split.promptIds, ...split.responseIds];
    // Completion tokens up to the last assistant turn's end-of-turn token: what a template appends after
    // the last turn (a separator, or the assistant header Llama-3's base template always adds) is not learned.
    let end = inputIds.length;
    if (options.completionOnlyLoss && record.completion.some((m) => m.role === 'assistant')) {
      const chat = tokenizer.encodeChat([...record.prompt, ...record.completion]);
      if (chat.ids.length === inputIds.length && chat.ids.every((id, i) => id === inputIds[i])) end = chat.assistantMask.lastIndexOf(1) + 1;
    }
    lossMask = inputIds.map((_, i) => (!options.completionOnlyLoss || (i >= split.promptIds.length && i < end) ? 1 : 0));
  } else {
    throw new Error(`SFT needs language-modeling or prompt-completion data, got a ${record.format} record (line ${data.line})`);
  }
  if (lossMask.length > 0) lossMask[0] = 0;

  let truncated = false;
  const { maxLength } = options;
  if (maxLength !== null && inputIds.length > maxLength) {
    if (options.truncation === 'drop') {
      return { ok: false, reason: `${inputIds.length} tokens, more than maxLength ${maxLength}` };
    }
    inputIds = inputIds.slice(0, maxLength);
    lossMask = lossMask.slice(0, maxLength);
    truncated = true;
  }
  if (!lossMask.includes(1)) {
    return { ok: false, reason: truncated ? `no trained tokens within maxLength ${maxLength}` : 'no trained tokens' };
  }
  return { ok: true, example: { line: data.line, inputIds, lossMask }, truncated };
}

/**
 * Tokenizes a preference record: the prompt once and each response after it
 * (standard: the response encoded without special tokens, then EOS;
 * conversational: the chat template's tokens after the prompt's generation
 * prompt). Too long: each response is cut to fit after the prompt, or the
 * pair is dropped; a prompt that leaves no room for a response always drops it.
 */
export function tokenizePreference(data: DataLine, tokenizer: TokenizerLike, options: LengthOptions): TokenizeResult<PreferenceExample> {
  const { record } = data;
  let promptIds: number[];
  let chosenIds: number[];
  let rejectedIds: number[];
  if ((record.format === 'preference' || record.format === 'implicit-preference') && record.style === 'standard') {
    promptIds = tokenizer.encode(record.prompt);
    chosenIds = withEos(tokenizer.encode(record.chosen, { addSpecialTokens: false }), tokenizer.eosTokenId);
    rejectedIds = withEos(tokenizer.encode(record.rejected, { addSpecialTokens: false }), tokenizer.eosTokenId);
  } else if ((record.format === 'preference' || record.format === 'implicit-preference') && record.style === 'conversational') {
    const chosen = splitChat(tokenizer, record.prompt, record.chosen);
    const rejected = splitChat(tokenizer, record.prompt, record.rejected);
    if (chosen === null || rejected === null) return { ok: false, reason: TEMPLATE_MISMATCH };
    promptIds = chosen.promptIds;
    chosenIds = chosen.responseIds;
    rejectedIds = rejected.responseIds;
  } else {
    throw new Error(`preference training needs preference data, got a ${record.format} record (line ${data.line})`);
  }
  if (chosenIds.length === 0 || rejectedIds.length === 0) {
    return { ok: false, reason: 'a response has no tokens after the prompt' };
  }

  let truncated = false;
  const { maxLength } = options;
  const longest = promptIds.length + Math.max(chosenIds.length, rejectedIds.length);
  if (maxLength !== null && longest > maxLength) {
    if (options.truncation === 'drop') {
      return { ok: false, reason: `${longest} tokens (prompt + longer response), more than maxLength ${maxLength}` };
    }
    const room = maxLength - promptIds.length;
    if (room < 1) return { ok: false, reason: `prompt of ${promptIds.length} tokens leaves no room for a response within maxLength ${maxLength}` };
    chosenIds = chosenIds.slice(0, room);
    rejectedIds = rejectedIds.slice(0, room);
    truncated = true;
  }
  return { ok: true, example: { line: data.line, promptIds, chosenIds, rejectedIds }, truncated };
}

/**
 * Tokenizes a prompt for generation (prompt-only data, or the prompt of
 * prompt-completion and preference data): conversational prompts end with the
 * chat template's generation prompt. Too long: the start is cut (generation
 * continues from the end), or the prompt is dropped.
 */
export function tokenizePrompt(data: DataLine, tokenizer: TokenizerLike, options: LengthOptions): TokenizeResult<PromptExample> {
  const { record } = data;
  if (record.format === 'language-modeling') {
    throw new Error(`generation needs prompts, got a language-modeling record (line ${data.line})`);
  }
  const prompt = record.prompt;
  let promptIds = typeof prompt === 'string' ? tokenizer.encode(prompt) : tokenizer.encodeChatIds(prompt, { addGenerationPrompt: true });
  if (promptIds.length === 0) return { ok: false, reason: 'the prompt has no tokens' };
  const groundTruth = record.format === 'prompt-only' ? record.groundTruth : null;
  let truncated = false;
  const { maxLength } = options;
  if (maxLength !== null && promptIds.length > maxLength) {
    if (options.truncation === 'drop') return { ok: false, reason: `prompt of ${promptIds.length} tokens, more than maxLength ${maxLength}` };
    promptIds = promptIds.slice(promptIds.length - maxLength);
    truncated = true;
  }
  return { ok: true, example: { line: data.line, promptIds, prompt, groundTruth }, truncated };
}
