import { Rng } from '@posttrain/random';
import { problemAnswer, problemKey, type ArithmeticProblem } from './arithmetic-problem';
import { makeWrongSolution, type ErrorKind } from './make-wrong-solution';
import { sampleDistinctProblems, sampleProblem, type ProblemSpace } from './sample-problem';
import { solveProblem } from './solve-problem';
import { parseTaskOptions, type TaskOptions } from './task-options';
import { factSentence, factsLine, formatPrompt, formatSolution, PREFERRED_STYLE, PROMPT_TEMPLATES, prosePrompt, REPLY_STYLES, workedSentence, type ReplyStyle } from './task-text';

export interface TaskMessage {
  readonly role: 'user' | 'assistant';
  readonly content: string;
}

/** `{"text"}`: one pretraining document. */
export interface CorpusRecord {
  readonly text: string;
}

/** `{"messages"}`: a user question and the worked reply (conversational language modelling, TRL's SFT format). */
export interface SftRecord {
  readonly messages: readonly [TaskMessage, TaskMessage];
}

/**
 * TRL preference with an explicit prompt, conversational. Two sets:
 * correctness pairs (`error` says which mistake the rejected reply makes;
 * both replies in one style) and style pairs (`style` pairs: both replies
 * right, the chosen one in {@link PREFERRED_STYLE}).
 */
export type PreferenceRecord =
  | { readonly prompt: readonly [TaskMessage]; readonly chosen: readonly [TaskMessage]; readonly rejected: readonly [TaskMessage]; readonly error: ErrorKind }
  | { readonly prompt: readonly [TaskMessage]; readonly chosen: readonly [TaskMessage]; readonly rejected: readonly [TaskMessage]; readonly preferredStyle: ReplyStyle };

/** TRL prompt-only, conversational, with the verifiable answer. */
export interface PromptRecord {
  readonly prompt: readonly [TaskMessage];
  readonly answer: string;
}

/** TRL prompt-only, standard (plain text): a prose prompt for the base model and the verifiable answer. */
export interface ProsePromptRecord {
  readonly prompt: string;
  readonly answer: string;
}

export type TaskFileKind = 'corpus' | 'sft' | 'preference' | 'prompts' | 'prose';
export type TaskRecord = CorpusRecord | SftRecord | PreferenceRecord | PromptRecord | ProsePromptRecord;

/** One file of the task: its name, what it is for, and its records in order. */
export interface TaskFile {
  readonly name: string;
  readonly kind: TaskFileKind;
  readonly split: 'train' | 'eval';
  readonly records: readonly TaskRecord[];
}

/** Everything {@link generateTaskData} makes. */
export interface TaskData {
  readonly options: TaskOptions;
  readonly files: readonly TaskFile[];
}

/** A problem with its user message fixed once, so every eval file asks it the same way. */
interface Posed {
  readonly problem: ArithmeticProblem;
  readonly prompt: string;
}

function pose(problems: readonly ArithmeticProblem[], rng: Rng): Posed[] {
  return problems.map((problem) => ({ problem, prompt: formatPrompt(problem, rng.nextInt(PROMPT_TEMPLATES.length)) }));
}

const user = (content: string): TaskMessage => ({ role: 'user', content });
const assistant = (content: string): TaskMessage => ({ role: 'assistant', content });

const pickStyle = (rng: Rng): ReplyStyle => REPLY_STYLES[rng.nextInt(REPLY_STYLES.length)];

/** An SFT dialogue; its reply in a style drawn with even odds, so SFT data holds both styles in equal measure. */
function sftRecord(p: Posed, styleRng: Rng): SftRecord {
  return { messages: [user(p.prompt), assistant(formatSolution(p.problem, solveProblem(p.problem), undefined, pickStyle(styleRng)))] };
}

/** A correctness pair: a right reply and a plausible wrong one, both in one style drawn with even odds. */
function correctnessRecord(p: Posed, rng: Rng): PreferenceRecord {
  const style = pickStyle(rng);
  const wrong = makeWrongSolution(p.problem, rng, undefined, style);
  return { prompt: [user(p.prompt)], chosen: [assistant(formatSolution(p.problem, solveProblem(p.problem), undefined, style))], rejected: [assistant(wrong.text)], error: wrong.kind };
}

/** A style pair: the same right reply in the preferred style (chosen) and in the other one (rejected). */
function styleRecord(p: Posed): PreferenceRecord {
  const solution = solveProblem(p.problem);
  const other = REPLY_STYLES.find((s) => s !== PREFERRED_STYLE)!;
  return { prompt: [user(p.prompt)], chosen: [assistant(formatSolution(p.problem, solution, undefined, PREFERRED_STYLE))], rejected: [assistant(formatSolution(p.problem, solution, undefined, other))], preferredStyle: PREFERRED_STYLE };
}

function promptRecord(p: Posed): PromptRecord {
  return { prompt: [user(p.prompt)], answer: String(problemAnswer(p.problem)) };
}

/**
 * One pretraining sentence: a worked computation (3 in 10), the same after
 * the question as a user would ask it ("What is 45+13? To add 45 and 13:
 * ...", 3 in 10), a fact sentence (1 in 10) or a line of column facts (3 in
 * 10). Held-out sentences are about their problem only (worked 3 : asked and
 * worked 3 : fact 1), so the held-out loss measures those problems. Worked
 * sentences dominate because they are what the base model must be able to
 * continue ("To add 45 and 13:" -> the steps and the sum); the asked ones put
 * the question's wording before them, so the base can read a question and
 * restate it. Post-training elicits this; it does not teach the arithmetic.
 */
function corpusSentence(problem: ArithmeticProblem, rng: Rng, space: ProblemSpace, heldOut: boolean): string {
  const u = rng.nextInt(heldOut ? 7 : 10);
  if (u < 3) return workedSentence(problem);
  if (u < 6) return `${formatPrompt(problem, rng.nextInt(PROMPT_TEMPLATES.length))} ${workedSentence(problem)}`;
  if (u < 7) return factSentence(problem, rng);
  return factsLine(rng, space);
}

/**
 * A pretraining document of one or two sentences (even odds). Two-sentence
 * documents put worked steps at positions 60-120, where a chat reply sits
 * after its prompt, so the base model has seen the arithmetic there too.
 */
function corpusRecord(draw: () => ArithmeticProblem, rng: Rng, space: ProblemSpace, heldOut = false): CorpusRecord {
  const sentences = heldOut ? 1 : 1 + rng.nextInt(2);
  const parts: string[] = [];
  for (let i = 0; i < sentences; i++) parts.push(corpusSentence(draw(), rng, space, heldOut));
  return { text: parts.join(' ') };
}

/**
 * Generates the whole task from `options` (validated with parseTaskOptions;
 * defaults fill what is missing), deterministically: each part draws from its
 * own fork of `Rng(seed)`.
 *
 * Held-out problems are drawn first; SFT, preference and RL prompts then draw
 * problems that are distinct from them and from one another (RL from the SFT
 * checkpoint measures generalisation, not recall); the corpus draws any
 * problem except the held-out ones. Every eval file poses the same held-out
 * problems, each with one fixed phrasing. The SFT sizes are prefixes of the
 * largest, so the sweep only adds data.
 */
export function generateTaskData(rawOptions?: unknown): TaskData {
  const options = parseTaskOptions(rawOptions);
  const root = new Rng(options.seed);
  const space: ProblemSpace = options;

  const heldOut = new Set<string>();
  const evalRng = root.fork('eval');
  const evalPosed = pose(sampleDistinctProblems(evalRng, space, options.evalSize, heldOut, 'eval problems'), evalRng);
  const evalKeys = new Set(heldOut);

  const used = heldOut; // grows with every training pool, so pools are disjoint
  const sftRng = root.fork('sft');
  const maxSft = options.sftSizes[options.sftSizes.length - 1];
  const coreSft = options.sftCoreSize ?? maxSft;
  const corePosed = pose(sampleDistinctProblems(sftRng, space, coreSft, used, 'SFT problems'), sftRng);
  const prefRng = root.fork('preference');
  const prefPosed = pose(sampleDistinctProblems(prefRng, space, options.preferenceSize, used, 'preference problems'), prefRng);
  const promptRng = root.fork('prompts');
  const promptPosed = pose(sampleDistinctProblems(promptRng, space, options.promptsSize, used, 'RL prompt problems'), promptRng);
  // The sweep's SFT problems past the core, drawn last (and from their own stream) so they change no other pool.
  const extraRng = root.fork('sft-extra');
  const extraPosed = maxSft > coreSft ? pose(sampleDistinctProblems(extraRng, space, maxSft - coreSft, used, 'SFT problems past sftCoreSize'), extraRng) : [];

  const corpusRng = root.fork('corpus');
  const corpus: CorpusRecord[] = [];
  const trainingProblem = (): ArithmeticProblem => {
    for (;;) {
      const problem = sampleProblem(corpusRng, space);
      if (!evalKeys.has(problemKey(problem))) return problem;
    }
  };
  while (corpus.length < options.corpusSize) corpus.push(corpusRecord(trainingProblem, corpusRng, space));
  const corpusEvalRng = root.fork('corpus-eval');
  const corpusEval = evalPosed.map((p) => corpusRecord(() => p.problem, corpusEvalRng, space, true));

  const styleRng = root.fork('styles');
  const coreSftRecords = corePosed.map((p) => sftRecord(p, styleRng));
  const sftEval = evalPosed.map((p) => sftRecord(p, styleRng));
  const extraStyleRng = root.fork('styles-extra');
  const sftAll = [...coreSftRecords, ...extraPosed.map((p) => sftRecord(p, extraStyleRng))];
  const prefEvalRng = root.fork('preference-eval');
  const files: TaskFile[] = [
    { name: 'corpus.jsonl', kind: 'corpus', split: 'train', records: corpus },
    { name: 'corpus-eval.jsonl', kind: 'corpus', split: 'eval', records: corpusEval },
    ...options.sftSizes.map((n): TaskFile => ({ name: `sft-${n}.jsonl`, kind: 'sft', split: 'train', records: sftAll.slice(0, n) })),
    { name: 'sft-eval.jsonl', kind: 'sft', split: 'eval', records: sftEval },
    { name: 'preference.jsonl', kind: 'preference', split: 'train', records: prefPosed.map(styleRecord) },
    { name: 'preference-eval.jsonl', kind: 'preference', split: 'eval', records: evalPosed.map(styleRecord) },
    { name: 'preference-correct.jsonl', kind: 'preference', split: 'train', records: prefPosed.map((p) => correctnessRecord(p, prefRng)) },
    { name: 'preference-correct-eval.jsonl', kind: 'preference', split: 'eval', records: evalPosed.map((p) => correctnessRecord(p, prefEvalRng)) },
    { name: 'prompts.jsonl', kind: 'prompts', split: 'train', records: promptPosed.map(promptRecord) },
    { name: 'prompts-eval.jsonl', kind: 'prompts', split: 'eval', records: evalPosed.map(promptRecord) },
    { name: 'prose-eval.jsonl', kind: 'prose', split: 'eval', records: evalPosed.map((p) => ({ prompt: prosePrompt(p.problem), answer: String(problemAnswer(p.problem)) })) },
  ];
  return { options, files };
}

/** A file's bytes: one JSON object per line, each line ending in "\n". */
export function serializeRecords(records: readonly TaskRecord[]): string {
  let out = '';
  for (const r of records) out += JSON.stringify(r) + '\n';
  return out;
}
