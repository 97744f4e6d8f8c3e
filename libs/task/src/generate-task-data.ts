import { Rng } from '@posttrain/random';
import { problemAnswer, problemKey, type ArithmeticProblem } from './arithmetic-problem';
import { makeWrongSolution, type ErrorKind } from './make-wrong-solution';
import { sampleDistinctProblems, sampleProblem, type ProblemSpace } from './sample-problem';
import { formatSolution, solveProblem } from './solve-problem';
import { parseTaskOptions, type TaskOptions } from './task-options';
import { factSentence, factsLine, formatPrompt, PROMPT_TEMPLATES, workedSentence } from './task-text';

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

/** TRL preference with an explicit prompt, conversational; `error` says which mistake the rejected reply makes. */
export interface PreferenceRecord {
  readonly prompt: readonly [TaskMessage];
  readonly chosen: readonly [TaskMessage];
  readonly rejected: readonly [TaskMessage];
  readonly error: ErrorKind;
}

/** TRL prompt-only, conversational, with the verifiable answer. */
export interface PromptRecord {
  readonly prompt: readonly [TaskMessage];
  readonly answer: string;
}

export type TaskFileKind = 'corpus' | 'sft' | 'preference' | 'prompts';
export type TaskRecord = CorpusRecord | SftRecord | PreferenceRecord | PromptRecord;

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

function sftRecord(p: Posed): SftRecord {
  return { messages: [user(p.prompt), assistant(formatSolution(solveProblem(p.problem)))] };
}

function preferenceRecord(p: Posed, rng: Rng): PreferenceRecord {
  const wrong = makeWrongSolution(p.problem, rng);
  return { prompt: [user(p.prompt)], chosen: [assistant(formatSolution(solveProblem(p.problem)))], rejected: [assistant(wrong.text)], error: wrong.kind };
}

function promptRecord(p: Posed): PromptRecord {
  return { prompt: [user(p.prompt)], answer: String(problemAnswer(p.problem)) };
}

/**
 * A pretraining document: a worked computation (half), a fact sentence (3 in
 * 10) or a line of column facts (1 in 5). Held-out documents are about their
 * problem only (worked 5 : fact 3), so the held-out loss measures those problems.
 */
function corpusRecord(problem: ArithmeticProblem, rng: Rng, space: ProblemSpace, heldOut = false): CorpusRecord {
  const u = rng.nextInt(heldOut ? 8 : 10);
  if (u < 5) return { text: workedSentence(problem) };
  if (u < 8) return { text: factSentence(problem, rng) };
  return { text: factsLine(rng, space) };
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
  const sftPosed = pose(sampleDistinctProblems(sftRng, space, maxSft, used, 'SFT problems'), sftRng);
  const prefRng = root.fork('preference');
  const prefPosed = pose(sampleDistinctProblems(prefRng, space, options.preferenceSize, used, 'preference problems'), prefRng);
  const promptRng = root.fork('prompts');
  const promptPosed = pose(sampleDistinctProblems(promptRng, space, options.promptsSize, used, 'RL prompt problems'), promptRng);

  const corpusRng = root.fork('corpus');
  const corpus: CorpusRecord[] = [];
  while (corpus.length < options.corpusSize) {
    const problem = sampleProblem(corpusRng, space);
    if (evalKeys.has(problemKey(problem))) continue;
    corpus.push(corpusRecord(problem, corpusRng, space));
  }
  const corpusEvalRng = root.fork('corpus-eval');
  const corpusEval = evalPosed.map((p) => corpusRecord(p.problem, corpusEvalRng, space, true));

  const sftAll = sftPosed.map(sftRecord);
  const prefEvalRng = root.fork('preference-eval');
  const files: TaskFile[] = [
    { name: 'corpus.jsonl', kind: 'corpus', split: 'train', records: corpus },
    { name: 'corpus-eval.jsonl', kind: 'corpus', split: 'eval', records: corpusEval },
    ...options.sftSizes.map((n): TaskFile => ({ name: `sft-${n}.jsonl`, kind: 'sft', split: 'train', records: sftAll.slice(0, n) })),
    { name: 'sft-eval.jsonl', kind: 'sft', split: 'eval', records: evalPosed.map(sftRecord) },
    { name: 'preference.jsonl', kind: 'preference', split: 'train', records: prefPosed.map((p) => preferenceRecord(p, prefRng)) },
    { name: 'preference-eval.jsonl', kind: 'preference', split: 'eval', records: evalPosed.map((p) => preferenceRecord(p, prefEvalRng)) },
    { name: 'prompts.jsonl', kind: 'prompts', split: 'train', records: promptPosed.map(promptRecord) },
    { name: 'prompts-eval.jsonl', kind: 'prompts', split: 'eval', records: evalPosed.map(promptRecord) },
  ];
  return { options, files };
}

/** A file's bytes: one JSON object per line, each line ending in "\n". */
export function serializeRecords(records: readonly TaskRecord[]): string {
  let out = '';
  for (const r of records) out += JSON.stringify(r) + '\n';
  return out;
}
