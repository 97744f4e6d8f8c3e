import type { Rng } from '@posttrain/random';
import { formatExpression, problemAnswer, type ArithmeticProblem } from './arithmetic-problem';
import type { ProblemSpace } from './sample-problem';
import { ANSWER_MARKER, solveProblem, type WorkedSolution } from './solve-problem';

/**
 * How a user asks. A few phrasings, so the chat model learns the task rather
 * than one string; every one carries the expression `a op b` verbatim.
 */
export const PROMPT_TEMPLATES: readonly string[] = ['What is {expr}?', 'Compute {expr}.', '{expr}=?'];

/** The user's message for a problem in phrasing `variant` (an index into {@link PROMPT_TEMPLATES}). */
export function formatPrompt(problem: ArithmeticProblem, variant: number): string {
  const template = PROMPT_TEMPLATES[variant];
  if (template === undefined) throw new Error(`prompt variant: got ${variant}, expected an integer in [0, ${PROMPT_TEMPLATES.length - 1}]`);
  return template.replace('{expr}', formatExpression(problem));
}

const FACTS: Readonly<Record<ArithmeticProblem['op'], readonly string[]>> = {
  add: ['{a} plus {b} equals {r}.', 'The sum of {a} and {b} is {r}.'],
  sub: ['{a} minus {b} equals {r}.', 'Taking {b} from {a} leaves {r}.'],
  mul: ['{a} times {b} equals {r}.', 'The product of {a} and {b} is {r}.'],
};

const WORKED: Readonly<Record<ArithmeticProblem['op'], string>> = {
  add: 'To add {a} and {b}: {steps}, so the sum is {r}.',
  sub: 'To take {b} from {a}: {steps}, so the difference is {r}.',
  mul: 'To multiply {a} by {b}: {steps}, so the product is {r}.',
};

function fill(template: string, problem: ArithmeticProblem, steps = '', result: number = problemAnswer(problem)): string {
  return template
    .replace('{a}', String(problem.a))
    .replace('{b}', String(problem.b))
    .replace('{r}', String(result))
    .replace('{steps}', steps);
}

/** A plain-prose statement of a problem's result: "347 plus 285 equals 632." */
export function factSentence(problem: ArithmeticProblem, rng: Rng): string {
  const options = FACTS[problem.op];
  return fill(options[rng.nextInt(options.length)], problem);
}

/**
 * A worked computation in prose: "To add 347 and 285: 7+5=12, 4+8+1=13,
 * 3+2+1=6, so the sum is 632." The same column steps as a chat reply, but
 * no chat turns and no "Answer:" line: the base model learns the arithmetic,
 * not the response format (the first claim of the experiments).
 */
export function workedSentence(problem: ArithmeticProblem, solution: WorkedSolution = solveProblem(problem), result: number = solution.answer): string {
  const steps = solution.steps.map((s) => s.text).join(', ');
  return fill(WORKED[problem.op], problem, steps, result);
}

/**
 * Two ways to write the same right reply, both in the SFT data in equal
 * measure: `direct` ("To add 45 and 13: 5+3=8, 4+1=5, so the sum is
 * 58.\nAnswer: 58") and `friendly`, the same after a short lead-in ("Sure!
 * To add 45 and 13: ..."). Neither is more correct; the preference pairs
 * prefer `friendly` ({@link PREFERRED_STYLE}), so SFT can only imitate both
 * while preference tuning (a reward model with PPO, or DPO) has to move the
 * distribution.
 */
export type ReplyStyle = 'direct' | 'friendly';

export const REPLY_STYLES: readonly ReplyStyle[] = ['direct', 'friendly'];

/** The style the preference pairs prefer. */
export const PREFERRED_STYLE: ReplyStyle = 'friendly';

/** What a `friendly` reply starts with; a `direct` reply starts with the worked sentence ("To ..."). */
export const FRIENDLY_LEAD_IN = 'Sure! ';

/** How each style's reply opens, whatever the problem: "To " (direct), "Sure! To " (friendly). */
export const STYLE_OPENINGS: Readonly<Record<ReplyStyle, string>> = { direct: 'To ', friendly: `${FRIENDLY_LEAD_IN}To ` };

/**
 * The assistant's reply: the problem restated and worked in the prose the
 * base model was pretrained on, then the answer alone on the last line (the
 * `format` reward rule wants "Answer:" to start it). `answer` overrides the
 * one read off the steps, in the sentence and on the answer line (a misread
 * result). SFT only has to teach the restatement and the answer line; the
 * arithmetic in between is what pretraining put in.
 */
export function formatSolution(problem: ArithmeticProblem, solution: WorkedSolution, answer: number = solution.answer, style: ReplyStyle = 'direct'): string {
  const lead = style === 'friendly' ? FRIENDLY_LEAD_IN : '';
  return `${lead}${workedSentence(problem, solution, answer)}\n${ANSWER_MARKER} ${answer}`;
}

/** The style a reply is written in: `friendly` when it starts with the lead-in (leading white space ignored), else `direct`. */
export function replyStyle(reply: string): ReplyStyle {
  return reply.trimStart().startsWith(FRIENDLY_LEAD_IN) ? 'friendly' : 'direct';
}

const PROSE_PROMPTS: Readonly<Record<ArithmeticProblem['op'], string>> = {
  add: 'To add {a} and {b}:',
  sub: 'To take {b} from {a}:',
  mul: 'To multiply {a} by {b}:',
};

/**
 * The start of a worked sentence, as a plain-text prompt for the base model:
 * "To add 45 and 13:". A model that learned the arithmetic continues it with
 * the steps and "so the sum is 58." (see {@link PROSE_ANSWER_PATTERN}).
 */
export function prosePrompt(problem: ArithmeticProblem): string {
  return fill(PROSE_PROMPTS[problem.op], problem);
}

/** One column fact of the kind the worked steps are made of: `7+5=12`, `13-8-1=4`, `7*6+4=46`. */
export function columnFact(rng: Rng, space: ProblemSpace): string {
  const op = space.operations[rng.nextInt(space.operations.length)];
  const x = rng.nextInt(10);
  switch (op) {
    case 'add': {
      const y = rng.nextInt(10);
      const c = rng.nextInt(2);
      return c > 0 ? `${x}+${y}+${c}=${x + y + c}` : `${x}+${y}=${x + y}`;
    }
    case 'sub': {
      const y = rng.nextInt(10);
      const c = rng.nextInt(2);
      const top = x - y - c < 0 ? x + 10 : x;
      return c > 0 ? `${top}-${y}-${c}=${top - y - c}` : `${top}-${y}=${top - y}`;
    }
    case 'mul': {
      const y = 2 + rng.nextInt(8);
      const c = rng.nextInt(y); // a carry into a column of a product by y is at most y - 1
      return c > 0 ? `${x}*${y}+${c}=${x * y + c}` : `${x}*${y}=${x * y}`;
    }
  }
}

/** A line of 4-6 column facts: "Facts: 7+5=12, 13-8-1=4, 7*6+4=46, 3+9=12." */
export function factsLine(rng: Rng, space: ProblemSpace): string {
  const n = 4 + rng.nextInt(3);
  const facts: string[] = [];
  for (let i = 0; i < n; i++) facts.push(columnFact(rng, space));
  return `Facts: ${facts.join(', ')}.`;
}
