import type { ChatMessage, TokenizerLike } from './tokenizer-like';

/**
 * Test double for TokenizerLike: one token per character (id = code point +
 * 4) and four special tokens. Chat template, in tokens:
 *   <s> then for each message: "role:" content <|end|>
 * and the generation prompt is "assistant:". The assistant mask covers the
 * content and the <|end|> of assistant messages.
 */
export class FakeTokenizer implements TokenizerLike {
  static readonly PAD = 0;
  static readonly BOS = 1;
  static readonly EOS = 2;
  static readonly END_OF_TURN = 3;
  static readonly OFFSET = 4;
  readonly padTokenId = FakeTokenizer.PAD;
  readonly bosTokenId: number | null;
  readonly eosTokenId = FakeTokenizer.EOS;

  constructor(options: { addBos?: boolean } = {}) {
    this.bosTokenId = options.addBos === false ? null : FakeTokenizer.BOS;
  }

  private chars(text: string): number[] {
    return Array.from(text, (c) => (c.codePointAt(0) as number) + FakeTokenizer.OFFSET);
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    const ids = this.chars(text);
    return options.addSpecialTokens !== false && this.bosTokenId !== null ? [this.bosTokenId, ...ids] : ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const names = ['<pad>', '<s>', '</s>', '<|end|>'];
    return ids
      .map((id) => (id < FakeTokenizer.OFFSET ? (options.skipSpecialTokens ? '' : names[id]) : String.fromCodePoint(id - FakeTokenizer.OFFSET)))
      .join('');
  }

  encodeChatIds(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): number[] {
    return this.encodeChat(messages, options).ids;
  }

  encodeChat(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): { ids: number[]; assistantMask: number[] } {
    const ids: number[] = [];
    const assistantMask: number[] = [];
    const push = (tokens: number[], mask: number) => {
      ids.push(...tokens);
      assistantMask.push(...tokens.map(() => mask));
    };
    if (this.bosTokenId !== null) push([this.bosTokenId], 0);
    for (const m of messages) {
      const trained = m.role === 'assistant' ? 1 : 0;
      push(this.chars(`${m.role}:`), 0);
      push([...this.chars(m.content), FakeTokenizer.END_OF_TURN], trained);
    }
    if (options.addGenerationPrompt) push(this.chars('assistant:'), 0);
    return { ids, assistantMask };
  }
}
