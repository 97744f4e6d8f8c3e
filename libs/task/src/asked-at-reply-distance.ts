/**
 * Pretraining text that teaches the base model to read a question and work
 * it where a chat reply would stand. The corpus's worked sentences ("To add
 * 45 and 13: ...") are rewritten, each with probability `share`, into the
 * question a user would ask, a plain-text gap as long in tokens as the chat
 * template puts between a user's message and the reply (for the built-in
 * ChatML template, "<|im_end|>\n<|im_start|>assistant\n": 13 tokens), then
 * the sentence, half of them after the friendly lead-in. The tiny model
 * learns to copy the operands from a fixed distance back and no further, so
 * the distance is what SFT can then re-key from the gap to the chat tokens.
 * The text has no chat turn and no "Answer:" line: teaching that format stays
 * SFT's job. The problems are the corpus's own, so held-out problems stay out.
 */
import type { Rng } from '@posttrain/random';
import type { ArithmeticProblem } from './arithmetic-problem';
import { FRIENDLY_LEAD_IN, PROMPT_TEMPLATES, formatPrompt } from './task-text';

/** A worked sentence's opening, with the question before it when the corpus already asked it ("What is 45+13? To add 45 and 13:"). */
const WORKED_OPENING = /(?:(?:What is \d+[+-]\d+\?|Compute \d+[+-]\d+\.|\d+[+-]\d+=\?) )?To (?:add (\d+) and (\d+)|take (\d+) from (\d+)):/g;

/**
 * `text` with each worked sentence, with probability `share`, preceded by a
 * question in a random phrasing, then `gap`, then (even odds) the friendly
 * lead-in; the others lose any question before them. Addition and
 * subtraction sentences only (the demo's task).
 */
export function askAtReplyDistance(text: string, rng: Rng, share: number, gap: string): string {
  if (!(share >= 0 && share <= 1)) throw new Error(`share: got ${share}, expected a number in [0, 1]`);
  if (gap.length === 0) throw new Error('gap: empty, expected the plain text that stands where the chat template separates question and reply');
  return text.replace(WORKED_OPENING, (match: string, addA?: string, addB?: string, subB?: string, subA?: string) => {
    const sentence = match.slice(match.indexOf('To '));
    if (rng.nextFloat() >= share) return sentence;
    const problem: ArithmeticProblem = addA !== undefined ? { op: 'add', a: Number(addA), b: Number(addB) } : { op: 'sub', a: Number(subA), b: Number(subB) };
    const question = formatPrompt(problem, rng.nextInt(PROMPT_TEMPLATES.length));
    return `${question}${gap}${rng.nextInt(2) === 0 ? '' : FRIENDLY_LEAD_IN}${sentence}`;
  });
}
