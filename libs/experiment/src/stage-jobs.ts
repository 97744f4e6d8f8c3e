/**
 * The pipeline's compute-bound jobs as plain data in, plain data out, so a
 * job runs the same in the pipeline's own thread or in a worker thread
 * (stage-lanes.ts): an offline training stage (libs/training `runStage` on a
 * raw run config), the evaluation of one model directory, and GRPO's
 * pass-rate filter over the RL prompts. Every input and result survives
 * structured cloning; nothing here depends on which thread runs it.
 */
import { join } from 'node:path';
import { loadModel } from '@posttrain/model';
import { CORRECT_COMPONENT, FORMAT_COMPONENT, PREFERRED_STYLE, REPLY_STYLES, STYLE_OPENINGS } from '@posttrain/task';
import { loadTokenizer } from '@posttrain/tokenizer';
import { parseRunConfig, runStage } from '@posttrain/training';
import type { Logger } from '@posttrain/telemetry';
import type { CompetenceResult } from './base-model';
import { competenceOf, readProsePrompts } from './base-model';
import { evaluateAnswers } from './evaluate-answers';
import type { PairLogProbs } from './model-evaluation';
import { meanAndStderr, measureStyle, modelCompleteFn, pairLogProbs, tokenizePairs } from './model-evaluation';
import type { PipelinePlan } from './pipeline-plan';
import { readEvalData } from './read-eval-data';
import type { FailedPromptsFile } from './select-failed-prompts';
import { writeFailedPrompts } from './select-failed-prompts';
import type { Estimate, ModelEvaluation } from './pipeline-types';
import { PipelineCancelledError } from './pipeline-types';

/** One offline training stage: the raw run config (parsed where it runs) of `runStage`. */
export interface TrainJob {
  kind: 'train';
  stage: string;
  config: Record<string, unknown>;
}

/** The evaluation of one model directory on the task's held-out files. */
export interface EvaluateJob {
  kind: 'evaluate';
  /** The row's name in the results table. */
  name: string;
  dir: string;
  sftExamples: number;
  taskDir: string;
  eval: PipelinePlan['eval'];
  /** Plain-text competence: measured with this many new tokens (null: not measured), unless `knownCompetence` is given. */
  competenceMaxNewTokens: number | null;
  knownCompetence: CompetenceResult | null;
}

/** GRPO's promptFilter 'failed': the first `want` prompts of `promptsFile` the model answers wrong, written to `to`. */
export interface FailedPromptsJob {
  kind: 'failed-prompts';
  dir: string;
  promptsFile: string;
  maxNewTokens: number;
  want: number;
  to: string;
}

export type StageJob = TrainJob | EvaluateJob | FailedPromptsJob;

export interface TrainJobResult {
  runDir: string;
  modelDir: string;
  step: number;
  lastEval: Record<string, number> | null;
}

export interface EvaluateJobResult {
  row: ModelEvaluation;
  /** The style pairs' log-probs (DPO's implicit reward compares two models' on the same pairs). */
  styleLogProbs: PairLogProbs;
  competence: CompetenceResult | null;
}

export type StageJobResult<J extends StageJob> = J extends TrainJob ? TrainJobResult : J extends EvaluateJob ? EvaluateJobResult : FailedPromptsFile;

/** A training step, reported while a train job runs. */
export interface JobStep {
  step: number;
  totalSteps: number;
  metrics: Record<string, number>;
}

export interface JobContext {
  signal?: AbortSignal;
  logger?: Logger;
  onStep?: (e: JobStep) => void;
}

const fraction = (xs: readonly boolean[]): Estimate => {
  const m = meanAndStderr(xs.map((x) => (x ? 1 : 0)));
  return { value: m.mean, stderr: m.stderr };
};

async function runTrainJob(job: TrainJob, ctx: JobContext): Promise<TrainJobResult> {
  const config = parseRunConfig(job.config, `${job.stage} stage`);
  const result = await runStage(config, {
    signal: ctx.signal,
    logger: ctx.logger,
    progress: false,
    callbacks: { onStep: (e) => ctx.onStep?.({ step: e.step, totalSteps: e.totalSteps, metrics: e.metrics }) },
  });
  if (result.status !== 'completed' || result.modelDir === null) throw new PipelineCancelledError(job.stage);
  return { runDir: result.runDir, modelDir: result.modelDir, step: result.step, lastEval: result.lastEval };
}

/**
 * Answer accuracy and format rate (greedy), the preferred-style rate, share
 * and entropy (exact, from the model's probabilities), how it ranks the
 * held-out style and correctness pairs, and, when asked, the plain-text
 * competence on the prose prompts.
 */
async function runEvaluateJob(job: EvaluateJob): Promise<EvaluateJobResult> {
  const taskFile = (name: string): string => join(job.taskDir, name);
  const [prompts, stylePairs, correctnessPairs] = await Promise.all(['prompts-eval.jsonl', 'preference-eval.jsonl', 'preference-correct-eval.jsonl'].map((f) => readEvalData(taskFile(f))));
  if (prompts.kind !== 'answers' || stylePairs.kind !== 'preferences' || correctnessPairs.kind !== 'preferences') throw new Error(`task files in ${job.taskDir} are not in the expected formats`);
  const evalItems = prompts.items.slice(0, job.eval.prompts);
  const model = await loadModel(job.dir);
  const tokenizer = await loadTokenizer(job.dir);
  try {
    const answers = await evaluateAnswers(evalItems, modelCompleteFn(model, tokenizer, { maxNewTokens: job.eval.maxNewTokens, temperature: 0 }));
    const correct = answers.samples.map((s) => (s.components[CORRECT_COMPONENT] ?? 0) > 0);
    const formatted = answers.samples.map((s) => (s.components[FORMAT_COMPONENT] ?? 0) > 0);
    const styleLps = pairLogProbs(model, tokenizePairs(stylePairs.lines.slice(0, job.eval.pairs), tokenizer, stylePairs.file));
    const correctnessLps = pairLogProbs(model, tokenizePairs(correctnessPairs.lines.slice(0, job.eval.pairs), tokenizer, correctnessPairs.file));
    const rankedRight = (lps: PairLogProbs): boolean[] => lps.chosenLogProbs.map((c, i) => c > lps.rejectedLogProbs[i]);
    const otherStyle = REPLY_STYLES.find((x) => x !== PREFERRED_STYLE)!;
    const style = measureStyle(
      model,
      tokenizer,
      evalItems.map((it) => it.prompt),
      STYLE_OPENINGS[PREFERRED_STYLE],
      STYLE_OPENINGS[otherStyle],
    );
    let competence: CompetenceResult | null = null;
    if (job.knownCompetence) competence = job.knownCompetence;
    else if (job.competenceMaxNewTokens !== null) competence = await competenceOf(model, tokenizer, await readProsePrompts(taskFile('prose-eval.jsonl'), job.eval.prosePrompts), job.competenceMaxNewTokens);
    const row: ModelEvaluation = {
      model: job.name,
      sftExamples: job.sftExamples,
      accuracy: fraction(correct),
      formatRate: fraction(formatted),
      correct,
      styleRate: { value: style.rate, stderr: style.rateStderr },
      styleShare: { value: style.share, stderr: style.shareStderr },
      styleEntropy: { value: style.entropy, stderr: style.entropyStderr },
      styleRanking: fraction(rankedRight(styleLps)),
      correctnessRanking: fraction(rankedRight(correctnessLps)),
      competence: competence ? { value: competence.accuracy, stderr: competence.stderr } : null,
      example: { prompt: answers.samples[0].prompt, reply: answers.samples[0].completion, answer: answers.samples[0].answer },
    };
    return { row, styleLogProbs: styleLps, competence };
  } finally {
    model.dispose();
  }
}

async function runFailedPromptsJob(job: FailedPromptsJob): Promise<FailedPromptsFile> {
  const model = await loadModel(job.dir);
  const tokenizer = await loadTokenizer(job.dir);
  try {
    return await writeFailedPrompts(job.promptsFile, modelCompleteFn(model, tokenizer, { maxNewTokens: job.maxNewTokens, temperature: 0 }), job.to, { want: job.want });
  } finally {
    model.dispose();
  }
}

/** Runs one job in this thread. */
export async function runStageJob<J extends StageJob>(job: J, ctx: JobContext = {}): Promise<StageJobResult<J>> {
  switch (job.kind) {
    case 'train':
      return (await runTrainJob(job, ctx)) as StageJobResult<J>;
    case 'evaluate':
      return (await runEvaluateJob(job)) as StageJobResult<J>;
    case 'failed-prompts':
      return (await runFailedPromptsJob(job)) as StageJobResult<J>;
  }
}
