/**
 * @posttrain/task: the embedded task of the demo and the experiments:
 * multi-digit arithmetic (2-3 digit addition and subtraction, multiplication
 * by a digit) with worked column steps, short enough (under ~60 characters a
 * dialogue) for a character-level model of a few million parameters. From a
 * seed it generates a prose pretraining corpus (no chat turns, no "Answer:"
 * line), chat SFT data in nested sizes, preference pairs with a plausible
 * wrong reply, RL prompts with verifiable answers, and held-out eval splits
 * that share no problem with training. It also holds the answer checker (a
 * libs/rewards spec) and the evaluation helpers of the experiments.
 *
 * @example
 * ```ts
 * import { writeTaskFiles, evaluateCompletions, rankPreferences } from '@posttrain/task';
 *
 * const manifest = await writeTaskFiles('runs/task', { seed: 7, sftSizes: [100, 1000] });
 * // runs/task/{corpus,sft-100,sft-1000,preference,prompts}.jsonl, their -eval twins, manifest.json
 *
 * const ev = await evaluateCompletions(['7+5=12, 4+8+1=13, 3+2+1=6\nAnswer: 632'], ['632']);
 * // ev.accuracy === 1, ev.formatRate === 1
 * const rank = rankPreferences({ chosenLogProbs: [-3, -9], rejectedLogProbs: [-5, -4] });
 * // rank.accuracy === 0.5
 * ```
 */
export { OPERATIONS, formatExpression, problemAnswer, problemKey, validateProblem } from './arithmetic-problem';
export type { ArithmeticProblem, Operation } from './arithmetic-problem';
export { ANSWER_MARKER, digitsOf, solveProblem } from './solve-problem';
export type { ColumnFault, ColumnStep, WorkedSolution } from './solve-problem';
export { ERROR_KINDS, applicableErrorKinds, makeWrongSolution } from './make-wrong-solution';
export type { ErrorKind, WrongSolution } from './make-wrong-solution';
export { problemSpaceSize, sampleDistinctProblems, sampleProblem } from './sample-problem';
export type { ProblemSpace } from './sample-problem';
export { FRIENDLY_LEAD_IN, PREFERRED_STYLE, PROMPT_TEMPLATES, REPLY_STYLES, STYLE_OPENINGS, columnFact, factSentence, factsLine, formatPrompt, formatSolution, prosePrompt, replyStyle, workedSentence } from './task-text';
export type { ReplyStyle } from './task-text';
export { askAtReplyDistance } from './asked-at-reply-distance';
export { defaultTaskOptions, parseTaskOptions } from './task-options';
export type { TaskOptions } from './task-options';
export { generateTaskData, serializeRecords } from './generate-task-data';
export type { CorpusRecord, PreferenceRecord, PromptRecord, ProsePromptRecord, SftRecord, TaskData, TaskFile, TaskFileKind, TaskMessage, TaskRecord } from './generate-task-data';
export { TASK_GENERATOR_VERSION, writeTaskFiles } from './write-task-files';
export type { TaskManifest, TaskManifestFile } from './write-task-files';
export { CORRECT_COMPONENT, FORMAT_COMPONENT, PROSE_ANSWER_PATTERN, PROSE_REWARD_SPEC, TASK_REWARD_SPEC, proseRewardComponents, taskRewardComponents } from './task-reward';
export { evaluateCompletions } from './evaluate-completions';
export type { TaskEvaluation } from './evaluate-completions';
export { rankPreferences } from './rank-preferences';
export type { PreferenceRanking, PreferenceScores } from './rank-preferences';
export { summarizeAnswerEntropy, summarizeTokenEntropy } from './summarize-entropy';
export type { AnswerEntropySummary, TokenEntropySummary } from './summarize-entropy';
