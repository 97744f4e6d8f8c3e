import type { ChatMessage } from './tokenizer';
import { TokenizerError } from './tokenizer-error';

/**
 * Finds the assistant turns in one full rendering of a conversation, by
 * position, for templates without `{% generation %}` markers.
 *
 * The rule (what counts as an assistant token):
 * - the message's content as the template rendered it (templates may trim it,
 *   or, like Qwen3's, move a `<think>` block out of it),
 * - plus the end-of-turn token that directly follows it (a special token of
 *   the tokenizer: `<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, ...),
 * - plus a `<think>...</think>` block the template rendered between the role
 *   header and the content (Qwen3 writes one, possibly empty, into the last
 *   turns): at inference the model generates it after the generation prompt.
 * Role headers, separators between turns, and anything the template appends
 * after the last turn (Llama-3's base template always ends with an assistant
 * header) are not assistant tokens. This is what the model produces after the
 * generation prompt, up to and including its stop token, which is also what
 * `{% generation %}` blocks mark in the templates that have them.
 *
 * Messages are walked in order with a cursor, so each content is searched only
 * after the previous message: the rendering is never compared with renderings
 * of shorter conversations (templates like Qwen3's render earlier turns
 * differently once more messages follow). Where a content occurs more than
 * once, the first occurrence followed by an end-of-turn token wins.
 */
export function locateAssistantSpans(text: string, messages: readonly ChatMessage[], endOfTurnTokens: readonly string[], source: string): [number, number][] {
  const ends = [...new Set(endOfTurnTokens)].filter((t) => t !== '').sort((a, b) => b.length - a.length);
  const endTokenAt = (pos: number): string | undefined => ends.find((t) => text.startsWith(t, pos));
  const spans: [number, number][] = [];
  let cursor = 0;
  messages.forEach((message, i) => {
    const forms = renderedForms(message.content);
    if (forms.length === 0) return; // an empty message renders nothing to locate (and trains nothing)
    let best: { start: number; end: number; endToken: string | undefined } | undefined;
    for (const form of forms) {
      for (let at = text.indexOf(form, cursor); at !== -1; at = text.indexOf(form, at + 1)) {
        const endToken = endTokenAt(at + form.length);
        const candidate = { start: at, end: at + form.length, endToken };
        if (best === undefined || better(candidate, best)) best = candidate;
        if (endToken !== undefined) break; // later occurrences of this form cannot be better
      }
    }
    if (message.role !== 'assistant') {
      if (best !== undefined) cursor = best.end + (best.endToken?.length ?? 0);
      return; // not found: the template dropped or rewrote it; the cursor stays
    }
    if (best === undefined) {
      throw new TokenizerError(source, `messages[${i}] (assistant): its content does not appear in the rendered conversation, so its tokens cannot be located; add {% generation %}...{% endgeneration %} around assistant output in the template`);
    }
    if (best.endToken === undefined) {
      throw new TokenizerError(source, `messages[${i}] (assistant): no end-of-turn special token (${ends.map((t) => JSON.stringify(t)).join(', ') || 'none known'}) directly follows its content in the rendered conversation; add {% generation %}...{% endgeneration %} around assistant output in the template`);
    }
    let start = best.start;
    const think = /<think>(?:(?!<think>)[\s\S])*<\/think>\s*$/.exec(text.slice(cursor, start));
    if (think !== null) start = cursor + think.index;
    const end = best.end + best.endToken.length;
    spans.push([start, end]);
    cursor = end;
  });
  return spans;
}

/** Earlier wins; at the same place, one followed by an end-of-turn token, then the longer. */
function better(a: { start: number; end: number; endToken: string | undefined }, b: { start: number; end: number; endToken: string | undefined }): boolean {
  const aEnds = a.endToken !== undefined;
  const bEnds = b.endToken !== undefined;
  if (aEnds !== bEnds) return aEnds;
  if (a.start !== b.start) return a.start < b.start;
  return a.end > b.end;
}

/** The strings a template may render for a content: as is, trimmed (Llama-3, Gemma), or after a `</think>` it moved out (Qwen3). */
function renderedForms(content: string): string[] {
  const variants = (s: string) => [s, s.trim(), s.trimStart(), s.trimEnd(), s.replace(/^\n+/, '')];
  const forms = variants(content);
  const think = content.lastIndexOf('</think>');
  if (think !== -1) forms.push(...variants(content.slice(think + '</think>'.length)));
  return [...new Set(forms)].filter((f) => f !== '');
}
