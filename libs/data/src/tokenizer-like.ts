/** One chat turn, as in the TRL conversational formats. */
export interface ChatMessage {
  role: string;
  content: string;
}

/**
 * What the data layer needs from a tokenizer. The real one lives in
 * @posttrain/tokenizer and matches this shape structurally, so this library
 * does not depend on it (and tests can use a small honest fake).
 */
export interface TokenizerLike {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Renders messages with the chat template and tokenizes; assistantMask[i] = 1 for tokens of assistant turns (the ones SFT trains on). */
  encodeChat(
    messages: readonly ChatMessage[],
    options?: { addGenerationPrompt?: boolean },
  ): { ids: number[]; assistantMask: number[] };
  /** The rendered conversation's ids without locating assistant turns (prompts, full-sequence losses). */
  encodeChatIds(messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }): number[];
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly bosTokenId: number | null;
}
