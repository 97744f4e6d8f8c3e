/**
 * The shipped base model: how it is made and how its plain-text competence
 * is measured. Post-training elicits what pretraining put in, so the demo and
 * the experiment start from a base model that already does the task's
 * arithmetic in prose ("To add 45 and 13: 5+3=8, 4+1=5, so the sum is 58.")
 * but has never seen a chat turn or an "Answer:" line.
 *
 * `baseModelPlan()` is the one recipe: the task slice and corpus, the model
 * shape, the pretraining run. `buildBaseModel` runs it with the project's own
 * stages (libs/task -> initModelDir -> libs/training's lm stage), measures
 * the held-out competence and writes the model card. The repository ships its
 * result in models/tiny-arith-base; `posttrain demo --from-scratch` rebuilds it.
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import { describeBackend, getBackendInfo, initBackend } from '@posttrain/backend';
import { initModelDir, loadModel } from '@posttrain/model';
import type { Operation } from '@posttrain/task';
import { askAtReplyDistance, proseRewardComponents, writeTaskFiles } from '@posttrain/task';
import { buildBuiltinTokenizerFiles, createBuiltinTokenizer, loadTokenizer } from '@posttrain/tokenizer';
import { parseRunConfig, runStage } from '@posttrain/training';
import type { Logger } from '@posttrain/telemetry';
import { createLogger } from '@posttrain/telemetry';
import { Rng } from '@posttrain/random';
import { evaluateAnswers } from './evaluate-answers';
import { modelCompleteFn } from './model-evaluation';
import { readEvalData } from './read-eval-data';
import type { AnswerItem } from './read-eval-data';
import type { LlamaModel } from '@posttrain/model';
import type { Tokenizer } from '@posttrain/tokenizer';

/** Everything that decides the base model's bytes. */
export interface BaseModelPlan {
  /** Seed of the task data (corpus and held-out problems), the initialisation and the pretraining run. */
  seed: number;
  /** The task slice: operations and operand digits, corpus documents, held-out problems (never in the corpus). */
  task: { operations: Operation[]; minDigits: number; maxDigits: number; corpusSize: number; evalSize: number };
  /** The tiny Llama (vocabulary: the built-in character tokenizer). */
  model: { hiddenSize: number; intermediateSize: number; numLayers: number; numHeads: number; maxPositionEmbeddings: number };
  /** The lm stage: packed documents of `maxLength` tokens, AdamW, cosine schedule. */
  pretrain: { steps: number; batchSize: number; learningRate: number; warmupRatio: number; weightDecay: number; maxLength: number; evalSteps: number; saveSteps: number };
  /**
   * A second lm run from the first one's weights, on the same corpus with a
   * fresh warm-up and cosine schedule (its own data order: seed + 1); null for none.
   */
  continuation: { steps: number; learningRate: number } | null;
  /**
   * A third lm run from the last one's weights (its own `seed`, checkpoints
   * and evaluations every 200 steps), on the corpus with `share` of its worked
   * sentences (drawn with `textSeed`) asked at the chat reply's distance: the
   * question, then `gap` (plain text as many tokens long as the chat template
   * between a user message and the reply), then the sentence
   * (libs/task `askAtReplyDistance`). The tiny model copies the operands only
   * from a distance it was trained at; null for none.
   */
  questions: { steps: number; learningRate: number; warmupRatio: number; seed: number; textSeed: number; share: number; gap: string } | null;
  /** Plain-text competence: held-out prose prompts completed greedily. */
  competence: { prompts: number; maxNewTokens: number };
}

/**
 * The recipe of models/tiny-arith-base. A test checks that the card's
 * recorded plan equals this one, so changing a number here means rebuilding
 * the model (`posttrain demo --from-scratch`) and committing it.
 */
export function baseModelPlan(): BaseModelPlan {
  return {
    seed: 0,
    task: { operations: ['add', 'sub'], minDigits: 2, maxDigits: 2, corpusSize: 50000, evalSize: 300 },
    model: { hiddenSize: 128, intermediateSize: 352, numLayers: 4, numHeads: 4, maxPositionEmbeddings: 256 },
    pretrain: { steps: 3000, batchSize: 16, learningRate: 3e-3, warmupRatio: 0.03, weightDecay: 0.01, maxLength: 128, evalSteps: 250, saveSteps: 500 },
    // The first run ended mid-way through learning to copy the operands (held-out competence 35%
    // at step 3000, rising); a second schedule finishes it.
    continuation: { steps: 1500, learningRate: 2e-3 },
    // With phases 1-2 alone SFT learns the reply format but copies the chat question's operands
    // wrongly (0.8% accuracy on the demo); questions asked 13 tokens before their worked answer teach
    // the copy. It is learned abruptly and not on every draw: this run (seed 3, text seed 11) learned it
    // between steps 600 and 800; three other draws (seeds 2 and 3, other texts) had not by step 1200.
    questions: { steps: 1200, learningRate: 2e-3, warmupRatio: 0.05, seed: 3, textSeed: 11, share: 0.7, gap: ' Worked out:\n' },
    competence: { prompts: 300, maxNewTokens: 48 },
  };
}

/** The task options the base model's data is generated from (post-training stages reuse them, so held-out problems stay held out). */
export function baseTaskOptions(plan: BaseModelPlan): Record<string, unknown> {
  // SFT / preference / prompt pools are not needed to pretrain; each part draws from its own
  // fork of the seed, so their sizes change neither the corpus nor the held-out problems.
  return { seed: plan.seed, ...plan.task, sftSizes: [1], preferenceSize: 1, promptsSize: 1 };
}

/** The lm stage's run config (libs/training keys, TRL names) for a plan; `root` is where runs/ and task/ live. */
export function baseRunConfig(plan: BaseModelPlan, root: string): Record<string, unknown> {
  const p = plan.pretrain;
  return {
    stage: 'lm',
    model: join(root, 'init'),
    output_dir: join(root, 'runs'),
    run_id: 'pretrain',
    seed: plan.seed,
    dataset: { train: join(root, 'task', 'corpus.jsonl'), eval: join(root, 'task', 'corpus-eval.jsonl') },
    train: {
      max_steps: p.steps,
      batch_size: p.batchSize,
      learning_rate: p.learningRate,
      lr_scheduler: 'cosine',
      warmup_ratio: p.warmupRatio,
      weight_decay: p.weightDecay,
      logging_steps: 10,
      eval_steps: p.evalSteps,
      save_steps: p.saveSteps,
    },
    lm: { max_length: p.maxLength, packing: true },
  };
}

/** The continuation's run config: from the first run's model, run id `pretrain-2`, seed + 1. */
export function baseContinuationConfig(plan: BaseModelPlan, root: string, firstModelDir: string): Record<string, unknown> | null {
  if (plan.continuation === null) return null;
  const first = baseRunConfig(plan, root);
  const train = first.train as Record<string, unknown>;
  return { ...first, model: firstModelDir, run_id: 'pretrain-2', seed: plan.seed + 1, train: { ...train, max_steps: plan.continuation.steps, learning_rate: plan.continuation.learningRate } };
}

/** The corpus files of the questions phase: task/corpus-asked.jsonl and corpus-asked-eval.jsonl, rewritten from the corpus (its own fork of the seed). */
export async function writeAskedCorpus(plan: BaseModelPlan, root: string): Promise<{ train: string; eval: string }> {
  if (plan.questions === null) throw new Error('writeAskedCorpus: the plan has no questions phase');
  const { share, gap } = plan.questions;
  const rng = new Rng(plan.questions.textSeed);
  const out = { train: join(root, 'task', 'corpus-asked.jsonl'), eval: join(root, 'task', 'corpus-asked-eval.jsonl') };
  for (const [from, to] of [['corpus.jsonl', out.train], ['corpus-eval.jsonl', out.eval]] as const) {
    const lines = (await readFile(join(root, 'task', from), 'utf8')).split('\n').filter((l) => l.trim() !== '');
    await writeFile(to, lines.map((l) => JSON.stringify({ text: askAtReplyDistance((JSON.parse(l) as { text: string }).text, rng, share, gap) })).join('\n') + '\n');
  }
  return out;
}

/** The questions phase's run config: from `fromModelDir`, run id `pretrain-3`, on the asked corpus (writeAskedCorpus). */
export function baseQuestionsConfig(plan: BaseModelPlan, root: string, fromModelDir: string): Record<string, unknown> | null {
  if (plan.questions === null) return null;
  const first = baseRunConfig(plan, root);
  const train = first.train as Record<string, unknown>;
  return {
    ...first,
    model: fromModelDir,
    run_id: 'pretrain-3',
    seed: plan.questions.seed,
    dataset: { train: join(root, 'task', 'corpus-asked.jsonl'), eval: join(root, 'task', 'corpus-asked-eval.jsonl') },
    train: { ...train, max_steps: plan.questions.steps, learning_rate: plan.questions.learningRate, warmup_ratio: plan.questions.warmupRatio, eval_steps: 200, save_steps: 200 },
  };
}

export interface CompetenceResult {
  /** Held-out prose prompts whose first worked sentence ends in the right number. */
  accuracy: number;
  n: number;
  /** Standard error of `accuracy` over the prompts (binomial). */
  stderr: number;
  samples: { prompt: string; completion: string; answer: string; correct: boolean }[];
}

/** Plain-text competence of a loaded model on `items` (held-out prose prompts with answers). */
export async function competenceOf(model: LlamaModel, tokenizer: Tokenizer, items: readonly AnswerItem[], maxNewTokens: number): Promise<CompetenceResult> {
  const ev = await evaluateAnswers(items, modelCompleteFn(model, tokenizer, { maxNewTokens, temperature: 0 }), { components: proseRewardComponents() });
  const accuracy = ev.accuracy ?? 0;
  return {
    accuracy,
    n: ev.n,
    stderr: Math.sqrt((accuracy * (1 - accuracy)) / ev.n),
    samples: ev.samples.map((s) => ({ prompt: s.prompt, completion: s.completion, answer: s.answer, correct: s.reward > 0 })),
  };
}

/** The held-out prose prompts of `proseFile` (the task's prose-eval.jsonl), the first `prompts` of them. */
export async function readProsePrompts(proseFile: string, prompts: number): Promise<AnswerItem[]> {
  const data = await readEvalData(proseFile);
  if (data.kind !== 'answers') throw new Error(`${proseFile}: expected prose prompts with answers`);
  return data.items.slice(0, prompts);
}

/** Plain-text competence of the model in `modelDir` on the held-out prose prompts of `proseFile`. */
export async function measureCompetence(modelDir: string, proseFile: string, settings: { prompts: number; maxNewTokens: number }): Promise<CompetenceResult> {
  const items = await readProsePrompts(proseFile, settings.prompts);
  if (getBackendInfo() === null) await initBackend({ logger: { info: () => undefined } });
  const model = await loadModel(modelDir);
  try {
    return await competenceOf(model, await loadTokenizer(modelDir), items, settings.maxNewTokens);
  } finally {
    model.dispose();
  }
}

export interface BaseModelResult {
  plan: BaseModelPlan;
  /** The final model (HF layout) with its README.md card. */
  modelDir: string;
  runDir: string;
  steps: number;
  seconds: number;
  /** Last held-out corpus evaluation of the lm stage (loss, token accuracy). */
  corpusEval: Record<string, number>;
  competence: CompetenceResult;
  backend: string;
}

export interface BuildBaseModelOptions {
  signal?: AbortSignal;
  logger?: Logger;
  onStep?: (step: number, totalSteps: number, metrics: Record<string, number>) => void;
  /** The command line recorded in the card. */
  command?: string;
}

/**
 * Builds the base model into `outDir` (new or empty): task data, random
 * init, the lm stage, the held-out competence, and `<outDir>/model` with a
 * README.md model card. Deterministic on one backend: the same plan gives
 * the same bytes.
 */
export async function buildBaseModel(plan: BaseModelPlan, outDir: string, options: BuildBaseModelOptions = {}): Promise<BaseModelResult> {
  const root = resolve(outDir);
  if (existsSync(root) && readdirSync(root).length > 0) throw new Error(`out: ${root} already exists and is not empty; choose another directory or remove it`);
  await mkdir(root, { recursive: true });
  const t0 = Date.now();
  if (getBackendInfo() === null) await initBackend({ logger: { info: () => undefined } });
  const info = getBackendInfo()!;
  const logger = options.logger ?? createLogger({ service: 'trainer', level: 'warn', sink: (line) => process.stderr.write(line + '\n') });

  await writeTaskFiles(join(root, 'task'), baseTaskOptions(plan));
  const tok = createBuiltinTokenizer();
  const files = buildBuiltinTokenizerFiles();
  await initModelDir(
    join(root, 'init'),
    {
      vocabSize: tok.vocabSize,
      hiddenSize: plan.model.hiddenSize,
      intermediateSize: plan.model.intermediateSize,
      numLayers: plan.model.numLayers,
      numHeads: plan.model.numHeads,
      numKvHeads: plan.model.numHeads,
      maxPositionEmbeddings: plan.model.maxPositionEmbeddings,
      tieWordEmbeddings: true,
      eosTokenId: tok.eosTokenId,
      padTokenId: tok.padTokenId,
    },
    {
      seed: plan.seed,
      assets: {
        'tokenizer.json': JSON.stringify(files.tokenizerJson),
        'tokenizer_config.json': JSON.stringify(files.tokenizerConfig),
        'special_tokens_map.json': JSON.stringify(files.specialTokensMap),
      },
    },
  );
  const stage = async (raw: Record<string, unknown>, offset: number, total: number): Promise<Awaited<ReturnType<typeof runStage>>> => {
    const run = await runStage(parseRunConfig(raw, 'base model pretraining'), {
      signal: options.signal,
      logger,
      progress: false,
      callbacks: { onStep: (e) => options.onStep?.(offset + e.step, total, e.metrics) },
    });
    if (run.status !== 'completed' || run.modelDir === null) throw new Error(`base model pretraining (${String(raw.run_id)}) stopped at step ${run.step} of ${run.totalSteps}`);
    return run;
  };
  const total = basePlanSteps(plan);
  const first = await stage(baseRunConfig(plan, root), 0, total);
  const second = baseContinuationConfig(plan, root, first.modelDir!);
  const afterSecond = second ? await stage(second, plan.pretrain.steps, total) : first;
  if (plan.questions) await writeAskedCorpus(plan, root);
  const third = baseQuestionsConfig(plan, root, afterSecond.modelDir!);
  const run = third ? await stage(third, plan.pretrain.steps + (plan.continuation?.steps ?? 0), total) : afterSecond;
  if (run.modelDir === null) throw new Error('base model pretraining produced no model');
  const competence = await measureCompetence(run.modelDir, join(root, 'task', 'prose-eval.jsonl'), plan.competence);
  const modelDir = join(root, 'model');
  await rm(modelDir, { recursive: true, force: true });
  await cp(run.modelDir, modelDir, { recursive: true });
  const result: BaseModelResult = {
    plan,
    modelDir,
    runDir: run.runDir,
    steps: first.step + (second ? afterSecond.step : 0) + (third ? run.step : 0),
    seconds: (Date.now() - t0) / 1000,
    corpusEval: run.lastEval ?? {},
    competence,
    backend: describeBackend(info),
  };
  await writeFile(join(modelDir, 'README.md'), baseModelCard(result, options.command ?? 'posttrain demo --from-scratch'));
  return result;
}

/** Optimizer steps of every phase of a plan. */
export function basePlanSteps(plan: BaseModelPlan): number {
  return plan.pretrain.steps + (plan.continuation?.steps ?? 0) + (plan.questions?.steps ?? 0);
}

/** The fenced JSON block of the card that {@link readCardRecord} reads back. */
export interface BaseModelCardRecord {
  plan: BaseModelPlan;
  command: string;
  steps: number;
  seconds: number;
  backend: string;
  corpusEval: Record<string, number>;
  competence: { accuracy: number; n: number; stderr: number };
}

const RECORD_START = '```json posttrain-base-model';

/** The model card (README.md): what the model is, the exact recipe and command, and its measured held-out numbers. */
export function baseModelCard(r: BaseModelResult, command: string, notes: readonly string[] = []): string {
  const record: BaseModelCardRecord = {
    plan: r.plan,
    command,
    steps: r.steps,
    seconds: Math.round(r.seconds),
    backend: r.backend,
    corpusEval: r.corpusEval,
    competence: { accuracy: r.competence.accuracy, n: r.competence.n, stderr: r.competence.stderr },
  };
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const m = r.plan.model;
  const examples = r.competence.samples.slice(0, 4).map((s) => `    ${s.prompt}${s.completion.split('\n')[0]}   (${s.correct ? 'right' : `wrong, ${s.answer} expected`})`);
  return [
    '# tiny-arith-base',
    '',
    `A ${m.numLayers}-layer Llama-family model (d_model ${m.hiddenSize}, ${m.numHeads} heads, SwiGLU ${m.intermediateSize}, tied embeddings,`,
    'the built-in character tokenizer with a ChatML template) pretrained from scratch on the prose corpus of',
    `posttrain's embedded arithmetic task: ${r.plan.task.minDigits}-digit ${r.plan.task.operations.join(' and ')} with worked column steps. It is the`,
    'base model of `posttrain demo` and `posttrain experiment`. It has never seen a chat turn or an',
    '"Answer:" line: teaching that format is the job of SFT.',
    ...(r.plan.questions
      ? [
          '',
          `Its last phase reads questions: ${pct(r.plan.questions.share)} of the corpus's worked sentences follow the question a user would ask`,
          `("What is 45+13?", "Compute 45-13.", "45+13=?"), then ${JSON.stringify(r.plan.questions.gap)}, which is as many tokens as the chat`,
          'template between a user message and the reply, then (half of them) "Sure! ". A model this small copies the',
          "operands only from a distance it was trained at; SFT then moves that copy onto the chat template's tokens.",
        ]
      : []),
    '',
    '## Held-out numbers',
    '',
    `- Plain-text competence: ${pct(r.competence.accuracy)} ± ${pct(r.competence.stderr)} (standard error) of ${r.competence.n} held-out`,
    '  prose prompts such as "To add 45 and 13:" continued greedily end their first worked sentence with the right',
    '  number. No held-out problem is in the corpus.',
    `- Held-out corpus: ${Object.entries(r.corpusEval)
      .map(([k, v]) => `${k} ${v.toFixed(4)}`)
      .join(', ')}.`,
    '',
    'Greedy continuations of the first held-out prompts:',
    '',
    ...examples,
    '',
    '## How it was made',
    '',
    `- Command: \`${command}\` (the base stage of the demo pipeline, libs/experiment \`buildBaseModel\`).`,
    `- Seed ${r.plan.seed}; ${r.steps} optimizer steps of ${r.plan.pretrain.batchSize} packed rows x ${r.plan.pretrain.maxLength} tokens; AdamW, lr ${r.plan.pretrain.learningRate}, cosine${r.plan.continuation ? ` for ${r.plan.pretrain.steps} steps, then ${r.plan.continuation.steps} more from those weights with a fresh schedule (lr ${r.plan.continuation.learningRate}, seed ${r.plan.seed + 1})` : ''}${r.plan.questions ? `, then ${r.plan.questions.steps} on the asked corpus (lr ${r.plan.questions.learningRate}, seed ${r.plan.questions.seed})` : ''}.`,
    `- Wall time ${Math.round(r.seconds)} s on ${r.backend}.`,
    ...notes.map((n) => `- ${n}`),
    '- The recorded recipe below is checked by a test against `baseModelPlan()` in the code.',
    '',
    RECORD_START,
    JSON.stringify(record, null, 2),
    '```',
    '',
  ].join('\n');
}

/** Reads the recorded recipe and numbers back from a card. */
export function readCardRecord(card: string, file = 'README.md'): BaseModelCardRecord {
  const start = card.indexOf(RECORD_START);
  if (start < 0) throw new Error(`${file}: no ${RECORD_START} block`);
  const body = card.slice(start + RECORD_START.length);
  const end = body.indexOf('```');
  if (end < 0) throw new Error(`${file}: the ${RECORD_START} block is not closed`);
  return JSON.parse(body.slice(0, end)) as BaseModelCardRecord;
}
