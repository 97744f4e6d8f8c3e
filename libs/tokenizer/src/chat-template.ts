import { Template } from '@huggingface/jinja';
import { locateAssistantSpans } from './locate-assistant-spans';
import type { ChatMessage } from './tokenizer';
import { TokenizerError } from './tokenizer-error';

/** A rendered conversation and the character spans [start, end) of its assistant turns. */
export interface RenderedChat {
  text: string;
  assistantSpans: [number, number][];
  /** How the spans were found: the template's `{% generation %}` markers, or each assistant message's content located in the text. */
  method: 'generation-markers' | 'content-search';
}

/** Special-token strings handed to the template as globals, as transformers does. */
export interface TemplateSpecialTokens {
  bos_token?: string;
  eos_token?: string;
  pad_token?: string;
  unk_token?: string;
}

// Private-use characters marking {% generation %} blocks in the rendered text; removed before returning.
const GENERATION_START = '\uE000';
const GENERATION_END = '\uE001';
const GENERATION_TAG = /{%(-?)\s*(end)?generation\s*(-?)%}/g;

/**
 * A Hugging Face chat template (Jinja, through @huggingface/jinja) with the
 * globals transformers provides: `messages`, `add_generation_prompt`,
 * `bos_token` / `eos_token` / `pad_token` / `unk_token`, `raise_exception`,
 * `strftime_now`, and `tools` / `documents` as none.
 *
 * Assistant spans (for the SFT loss mask) come from one rendering of the whole
 * conversation, in one of two ways:
 * - when the template has `{% generation %}...{% endgeneration %}` blocks
 *   (the transformers convention for `return_assistant_tokens_mask`), the span
 *   is exactly what the blocks render;
 * - otherwise each assistant message is located by position: its content and
 *   the end-of-turn token after it (see locateAssistantSpans for the rule).
 */
export class ChatTemplate {
  readonly source: string;
  private readonly template: Template;
  private readonly marked: Template | undefined;
  private readonly specialTokens: TemplateSpecialTokens;
  private readonly endOfTurnTokens: readonly string[];

  /**
   * `source` names where the template came from (e.g. `dir/tokenizer_config.json "chat_template"`) for error messages.
   * `endOfTurnTokens`: the strings that can end an assistant turn (the tokenizer's special tokens); default the EOS.
   */
  constructor(templateText: string, specialTokens: TemplateSpecialTokens, source: string, endOfTurnTokens?: readonly string[]) {
    this.source = source;
    this.specialTokens = specialTokens;
    this.endOfTurnTokens = endOfTurnTokens ?? (specialTokens.eos_token === undefined ? [] : [specialTokens.eos_token]);
    this.template = compile(templateText, source);
    GENERATION_TAG.lastIndex = 0;
    if (GENERATION_TAG.test(templateText)) {
      // Turn each tag into a block that outputs a marker, keeping the tag's whitespace control and
      // trim_blocks/lstrip_blocks behaviour (a block tag, not an expression, so the newline after it is trimmed alike).
      const markedText = templateText.replace(GENERATION_TAG, (_tag, lstrip: string, end: string | undefined, rstrip: string) => {
        const marker = end === undefined ? GENERATION_START : GENERATION_END;
        return `{%${lstrip} if true %}${marker}{% endif ${rstrip}%}`;
      });
      this.marked = compile(markedText, source);
    }
  }

  /** Renders the conversation to text. */
  render(messages: readonly ChatMessage[], addGenerationPrompt = false): string {
    return this.run(this.template, messages, addGenerationPrompt);
  }

  /** Renders the conversation once and locates the assistant turns in the text (see the class comment). */
  renderWithAssistantSpans(messages: readonly ChatMessage[], addGenerationPrompt = false): RenderedChat {
    validateMessages(messages);
    if (this.marked !== undefined) return this.renderMarked(messages, addGenerationPrompt);
    const text = this.render(messages, addGenerationPrompt);
    return { text, assistantSpans: locateAssistantSpans(text, messages, this.endOfTurnTokens, this.source), method: 'content-search' };
  }

  private renderMarked(messages: readonly ChatMessage[], addGenerationPrompt: boolean): RenderedChat {
    for (let i = 0; i < messages.length; i++) {
      if (messages[i].content.includes(GENERATION_START) || messages[i].content.includes(GENERATION_END)) {
        throw new TokenizerError('<input>', 'contains a reserved private-use character (U+E000/U+E001)', `messages[${i}].content`);
      }
    }
    const raw = this.run(this.marked as Template, messages, addGenerationPrompt);
    let text = '';
    const assistantSpans: [number, number][] = [];
    let open: number | undefined;
    for (const ch of raw) {
      if (ch === GENERATION_START) {
        if (open !== undefined) throw new TokenizerError(this.source, 'nested {% generation %} blocks');
        open = text.length;
      } else if (ch === GENERATION_END) {
        if (open === undefined) throw new TokenizerError(this.source, '{% endgeneration %} without {% generation %}');
        if (text.length > open) assistantSpans.push([open, text.length]);
        open = undefined;
      } else {
        text += ch;
      }
    }
    if (open !== undefined) throw new TokenizerError(this.source, '{% generation %} block not closed');
    return { text, assistantSpans, method: 'generation-markers' };
  }

  private run(template: Template, messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    validateMessages(messages);
    try {
      return template.render({
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: addGenerationPrompt,
        tools: null,
        documents: null,
        ...this.specialTokens,
      });
    } catch (err) {
      throw new TokenizerError(this.source, `rendering failed: ${(err as Error).message}`);
    }
  }
}

function compile(templateText: string, source: string): Template {
  try {
    return new Template(templateText);
  } catch (err) {
    throw new TokenizerError(source, `invalid chat template: ${(err as Error).message}`);
  }
}

function validateMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages)) throw new TokenizerError('<input>', `must be an array of {role, content}, got ${typeof messages}`, 'messages');
  messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object') throw new TokenizerError('<input>', `must be an object {role, content}, got ${JSON.stringify(m)}`, `messages[${i}]`);
    if (typeof m.role !== 'string' || m.role === '') {
      throw new TokenizerError('<input>', `must be a non-empty string, got ${JSON.stringify(m.role)}`, `messages[${i}].role`);
    }
    if (typeof m.content !== 'string') {
      throw new TokenizerError('<input>', `must be a string, got ${JSON.stringify(m.content)}`, `messages[${i}].content`);
    }
  });
}
