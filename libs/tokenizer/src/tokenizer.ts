/** One turn of a conversation, as in the TRL "messages" format. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** Token ids of a rendered conversation and, per token, 1 where it belongs to an assistant turn. */
export interface EncodedChat {
  ids: number[];
  assistantMask: number[];
}

/**
 * A text tokenizer with a chat template. `encodeChat` is the basis of
 * assistant-only SFT loss: `assistantMask[i]` is 1 for the tokens of each
 * assistant message's content and its end-of-turn token (and a `<think>` block
 * the template renders before the content), 0 for everything else
 * (system/user turns, role headers, separators, the generation prompt).
 */
export interface Tokenizer {
  /** Encodes text; `addSpecialTokens` (default true, as in Hugging Face) applies the tokenizer's post-processor (e.g. BOS). */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** Decodes ids; `skipSpecialTokens` (default false) drops special tokens. */
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Renders the conversation with the chat template and tokenizes it (without post-processor specials, as apply_chat_template does). */
  encodeChat(messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }): EncodedChat;
  /**
   * The token ids of the rendered conversation, encoded in one piece, without locating assistant
   * turns: what prompts and full-sequence losses need (templates whose turns cannot be located still work).
   */
  encodeChatIds(messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }): number[];
  /** Renders the conversation with the chat template. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
  readonly eosTokenId: number;
  /** The pad token's id; the EOS id when the tokenizer defines no pad token (the usual fallback). */
  readonly padTokenId: number;
  readonly bosTokenId: number | null;
  /** One more than the largest token id (the embedding rows a model needs). */
  readonly vocabSize: number;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}
