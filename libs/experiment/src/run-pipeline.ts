/**
 * The demo / experiment pipeline as plain functions over directories:
 *
 *   task data -> random tiny base -> pretraining (lm) -> eval base
 *   -> SFT (each sweep size) -> eval -> reward model -> DPO from SFT -> eval
 *
 * Every training stage is a libs/training `runStage` run under
 * <out>/runs/<stage>/ (config.json, metrics.jsonl, TensorBoard events,
 * checkpoints, report.html); every evaluation loads the stage's model and
 * measures answer accuracy and format rate on held-out prompts, preference
 * ranking on held-out pairs, and (SFT, DPO) the output distribution's
 * entropy. RL (GRPO / PPO) is not part of this pipeline yet: its result says
 * so, and the claim that needs it is reported as not measured.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { getBackendInfo, initBackend } from '@posttrain/backend';
import { initModelDir, loadModel } from '@posttrain/model';
import type { LlamaModel } from '@posttrain/model';
import { writeTaskFiles } from '@posttrain/task';
import { buildBuiltinTokenizerFiles, createBuiltinTokenizer, loadTokenizer } from '@posttrain/tokenizer';
import type { Tokenizer } from '@posttrain/tokenizer';
import { parseRunConfig, runStage } from '@posttrain/training';
import type { RunResult } from '@posttrain/training';
import type { Logger } from '@posttrain/telemetry';
import { createLogger } from '@posttrain/telemetry';
import { assessClaims } from './assess-claims';
import type { Claim } from './assess-claims';
import { evaluateAnswers } from './evaluate-answers';
import type { PairLogProbs } from './model-evaluation';
import { evaluatePreferences, measureConcentration, modelCompleteFn, pairLogProbs, tokenizePairs } from './model-evaluation';
import type { PipelinePlan, TrainSettings } from './pipeline-plan';
import { readEvalData } from './read-eval-data';
import type { RlPoint, ServiceLauncher } from './run-grpo';
import { runGrpo, samplesToReach } from './run-grpo';

export type PipelineEvent =
  | { type: 'stage-start'; stage: string; title: string; index: number; total: number }
  | { type: 'step'; stage: string; step: number; totalSteps: number; metrics: Record<string, number> }
  | { type: 'stage-end'; stage: string; title: string; seconds: number; metrics: Record<string, number> };

export interface StageOutcome {
  stage: string;
  title: string;
  kind: 'data' | 'train' | 'eval';
  seconds: number;
  /** The libs/training run directory of a training stage. */
  runDir: string | null;
  metrics: Record<string, number>;
}

/** One model's row of the results table. */
export interface ModelEvaluation {
  model: string;
  /** SFT examples behind the model (0 for the base model). */
  sftExamples: number;
  accuracy: number;
  formatRate: number;
  meanReward: number;
  /** Preference-eval pairs ranked right by summed / per-token log-prob. */
  preferenceAccuracy: number;
  preferenceAccuracyPerToken: number;
  /** Mean per-token log-prob margin chosen - rejected (nats). */
  preferenceMarginPerToken: number;
  /** Entropy of final answers across samples (nats) and next-token entropy along them; null where not measured. */
  answerEntropy: number | null;
  tokenEntropy: number | null;
  /** One greedy reply to the first eval prompt, to see the format. */
  example: { prompt: string; reply: string; answer: string };
}

export interface RlComparison {
  fromSft: RlPoint[];
  fromBase: RlPoint[];
  /** Half the best step reward of either run: the "given accuracy" both are measured against (Infinity, null in results.json, when neither earned any). */
  threshold: number;
  samplesFromSft: number;
  samplesFromBase: number;
  meanKlFromSft: number;
  meanKlFromBase: number;
}

export interface PipelineResult {
  plan: PipelinePlan;
  outDir: string;
  backend: string;
  stages: StageOutcome[];
  models: ModelEvaluation[];
  /** Held-out pairwise accuracy of the reward model. */
  rewardModelAccuracy: number;
  /** DPO's held-out implicit-reward accuracy (log pi - log pi_sft of chosen above rejected). */
  dpoImplicitRewardAccuracy: number;
  /** Which RL stages ran (see `rlNote` when none). */
  rlStages: string[];
  rlNote: string;
  /** GRPO from SFT vs from base (claim 2), when it ran. */
  rl: RlComparison | null;
  claims: Claim[];
  totalSeconds: number;
}

export interface RunPipelineOptions {
  signal?: AbortSignal;
  onEvent?: (e: PipelineEvent) => void;
  /** Starts the serving tier for the GRPO stages; without it they are skipped (and the result says so). */
  launchServices?: ServiceLauncher;
  /** The trainer's structured log; default: warnings and errors only, as JSON lines on stderr (progress comes through onEvent). */
  logger?: Logger;
}

/** Thrown when the run was cancelled through the signal (between stages or at a step boundary). */
export class PipelineCancelledError extends Error {
  constructor(stage: string) {
    super(`cancelled during stage ${stage}`);
    this.name = 'PipelineCancelledError';
  }
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

function trainConfig(plan: PipelinePlan, t: TrainSettings): Record<string, unknown> {
  return {
    ...(t.steps !== null ? { max_steps: t.steps } : {}),
    epochs: t.epochs,
    batch_size: t.batchSize,
    learning_rate: t.learningRate,
    lr_scheduler: 'cosine',
    warmup_ratio: 0.05,
    logging_steps: plan.quick ? 1 : 5,
  };
}

/**
 * Runs the plan into `outDir` (created; it must not already hold a pipeline
 * run) and returns every stage's timing and metrics, the per-model
 * evaluations and the claims. Cancelling through `signal` stops at the next
 * step boundary with a PipelineCancelledError.
 */
export async function runPipeline(plan: PipelinePlan, outDir: string, options: RunPipelineOptions = {}): Promise<PipelineResult> {
  const out = resolve(outDir);
  if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`out: ${out} already exists and is not empty; choose another directory or remove it`);
  await mkdir(out, { recursive: true });
  const t0 = Date.now();
  const emit = options.onEvent ?? (() => undefined);
  const logger = options.logger ?? createLogger({ service: 'trainer', level: 'warn', sink: (line) => process.stderr.write(line + '\n') });
  if (getBackendInfo() === null) await initBackend({ logger: { info: () => undefined } });
  const backend = getBackendInfo()!;

  const sweepSizes = plan.sweep ? plan.task.sftSizes : [plan.task.sftSizes[plan.task.sftSizes.length - 1]];
  const mainSize = sweepSizes[sweepSizes.length - 1];
  const titles: [string, string][] = [
    ['task', 'generate the arithmetic task'],
    ['pretrain', 'pretrain the tiny base model on the corpus'],
    ['eval-base', 'evaluate the base model in the chat format'],
    ...sweepSizes.flatMap((n): [string, string][] => [
      [`sft-${n}`, `SFT on ${n} examples`],
      [`eval-sft-${n}`, `evaluate SFT (${n} examples)`],
    ]),
    ['rm', 'train the reward model on preference pairs'],
    ['dpo', 'DPO from the SFT model'],
    ['eval-dpo', 'evaluate the DPO model'],
  ];
  const rlPlan = options.launchServices ? plan.rl : null;
  if (rlPlan) titles.push(['grpo-sft', 'GRPO from the SFT model (services on loopback)'], ['grpo-base', 'GRPO from the base model (services on loopback)'], ['eval-grpo', 'evaluate both GRPO models']);
  const rlNote = rlPlan
    ? 'GRPO ran from SFT and from base; PPO is not part of the pipeline'
    : plan.rl === null
      ? 'GRPO / PPO did not run: the plan has no RL stage, so claim 2 is not measured'
      : 'GRPO / PPO did not run: no service launcher was given (the serving tier is needed), so claim 2 is not measured';
  const stages: StageOutcome[] = [];
  let current = '';
  let currentStart = 0;
  const begin = (stage: string): void => {
    if (options.signal?.aborted) throw new PipelineCancelledError(stage);
    current = stage;
    currentStart = Date.now();
    const index = titles.findIndex(([s]) => s === stage);
    emit({ type: 'stage-start', stage, title: titles[index][1], index: index + 1, total: titles.length });
  };
  const end = (kind: StageOutcome['kind'], metrics: Record<string, number>, runDir: string | null = null): void => {
    const title = titles.find(([s]) => s === current)![1];
    const seconds = (Date.now() - currentStart) / 1000;
    stages.push({ stage: current, title, kind, seconds, runDir, metrics });
    emit({ type: 'stage-end', stage: current, title, seconds, metrics });
  };
  const train = async (stage: string, raw: Record<string, unknown>): Promise<RunResult> => {
    const config = parseRunConfig({ output_dir: join(out, 'runs'), run_id: stage, seed: plan.seed, ...raw }, `${stage} stage`);
    const result = await runStage(config, {
      signal: options.signal,
      logger,
      progress: false,
      callbacks: { onStep: (e) => emit({ type: 'step', stage, step: e.step, totalSteps: e.totalSteps, metrics: e.metrics }) },
    });
    if (result.status !== 'completed' || result.modelDir === null) throw new PipelineCancelledError(stage);
    return result;
  };

  // --- task data ---
  begin('task');
  const taskDir = join(out, 'task');
  const manifest = await writeTaskFiles(taskDir, { seed: plan.seed, ...plan.task });
  end('data', Object.fromEntries(manifest.files.map((f) => [`records/${f.name}`, f.records])));
  const taskFile = (name: string): string => join(taskDir, name);
  const prompts = await readEvalData(taskFile('prompts-eval.jsonl'));
  const pairsData = await readEvalData(taskFile('preference-eval.jsonl'));
  if (prompts.kind !== 'answers' || pairsData.kind !== 'preferences') throw new Error(`task files in ${taskDir} are not in the expected formats`);
  const evalItems = prompts.items.slice(0, plan.eval.prompts);
  const pairLines = pairsData.lines.slice(0, plan.eval.pairs);

  // --- base model ---
  begin('pretrain');
  const tok = createBuiltinTokenizer();
  const files = buildBuiltinTokenizerFiles();
  const initDir = join(out, 'models', 'init');
  await initModelDir(
    initDir,
    {
      vocabSize: tok.vocabSize,
      hiddenSize: plan.model.hiddenSize,
      intermediateSize: plan.model.intermediateSize,
      numLayers: plan.model.numLayers,
      numHeads: plan.model.numHeads,
      numKvHeads: plan.model.numHeads,
      maxPositionEmbeddings: 256,
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
  const base = await train('pretrain', {
    stage: 'lm',
    model: initDir,
    dataset: { train: taskFile('corpus.jsonl'), eval: taskFile('corpus-eval.jsonl') },
    train: trainConfig(plan, plan.pretrain),
    lm: { max_length: plan.model.maxLength, packing: true },
  });
  end('train', { ...(base.lastEval ?? {}), steps: base.step }, base.runDir);

  const models: ModelEvaluation[] = [];
  const pairCache = new Map<string, PairLogProbs>();
  const evaluateModel = async (name: string, dir: string, sftExamples: number, concentration: boolean): Promise<ModelEvaluation> => {
    const model: LlamaModel = await loadModel(dir);
    const tokenizer: Tokenizer = await loadTokenizer(dir);
    try {
      const answers = await evaluateAnswers(evalItems, modelCompleteFn(model, tokenizer, { maxNewTokens: plan.eval.maxNewTokens, temperature: 0 }));
      const lps = pairLogProbs(model, tokenizePairs(pairLines, tokenizer, pairsData.file));
      pairCache.set(name, lps);
      const pref = evaluatePreferences(lps);
      const conc = concentration
        ? measureConcentration(model, tokenizer, evalItems.slice(0, plan.eval.concentrationPrompts).map((it) => it.prompt), {
            samplesPerPrompt: plan.eval.samplesPerPrompt,
            temperature: plan.eval.temperature,
            maxNewTokens: plan.eval.maxNewTokens,
            seed: plan.seed,
          })
        : null;
      const row: ModelEvaluation = {
        model: name,
        sftExamples,
        accuracy: answers.accuracy ?? 0,
        formatRate: answers.formatRate ?? 0,
        meanReward: answers.meanReward,
        preferenceAccuracy: pref.summed.accuracy,
        preferenceAccuracyPerToken: pref.perToken.accuracy,
        preferenceMarginPerToken: pref.perToken.meanMargin,
        answerEntropy: conc ? conc.answer.meanEntropy : null,
        tokenEntropy: conc ? conc.token.meanPerToken : null,
        example: { prompt: answers.samples[0].prompt, reply: answers.samples[0].completion, answer: answers.samples[0].answer },
      };
      models.push(row);
      return row;
    } finally {
      model.dispose();
    }
  };
  const evalMetrics = (m: ModelEvaluation): Record<string, number> => {
    const r: Record<string, number> = { accuracy: m.accuracy, format_rate: m.formatRate, preference_accuracy: m.preferenceAccuracy, preference_accuracy_per_token: m.preferenceAccuracyPerToken };
    if (m.answerEntropy !== null) r.answer_entropy = m.answerEntropy;
    if (m.tokenEntropy !== null) r.token_entropy = m.tokenEntropy;
    return r;
  };

  begin('eval-base');
  end('eval', evalMetrics(await evaluateModel('base', base.modelDir!, 0, false)));

  // --- SFT (and the sweep) ---
  let sftDir = '';
  for (const n of sweepSizes) {
    begin(`sft-${n}`);
    const sft = await train(`sft-${n}`, {
      stage: 'sft',
      model: base.modelDir!,
      dataset: { train: taskFile(`sft-${n}.jsonl`), eval: taskFile('sft-eval.jsonl') },
      train: trainConfig(plan, plan.sft),
      sft: { max_length: plan.model.maxLength },
    });
    end('train', { ...(sft.lastEval ?? {}), steps: sft.step }, sft.runDir);
    begin(`eval-sft-${n}`);
    end('eval', evalMetrics(await evaluateModel(`sft-${n}`, sft.modelDir!, n, n === mainSize)));
    if (n === mainSize) sftDir = sft.modelDir!;
  }

  // --- reward model ---
  begin('rm');
  const rm = await train('rm', {
    stage: 'rm',
    model: sftDir,
    dataset: { train: taskFile('preference.jsonl'), eval: taskFile('preference-eval.jsonl') },
    train: trainConfig(plan, plan.rm),
    rm: { max_length: plan.model.maxLength },
  });
  const rewardModelAccuracy = rm.lastEval?.['eval/rewards/accuracies'] ?? Number.NaN;
  end('train', { ...(rm.lastEval ?? {}), steps: rm.step }, rm.runDir);

  // --- DPO ---
  begin('dpo');
  const dpo = await train('dpo', {
    stage: 'dpo',
    model: sftDir,
    dataset: { train: taskFile('preference.jsonl'), eval: taskFile('preference-eval.jsonl') },
    train: trainConfig(plan, plan.dpo),
    dpo: { max_length: plan.model.maxLength, beta: plan.dpo.beta },
  });
  const dpoImplicitRewardAccuracy = dpo.lastEval?.['eval/rewards/accuracies'] ?? Number.NaN;
  end('train', { ...(dpo.lastEval ?? {}), steps: dpo.step }, dpo.runDir);
  begin('eval-dpo');
  const dpoRow = await evaluateModel('dpo', dpo.modelDir!, mainSize, true);
  const implicit = evaluatePreferences(pairCache.get('dpo')!, pairCache.get(`sft-${mainSize}`)!).implicitReward!;
  end('eval', { ...evalMetrics(dpoRow), implicit_reward_accuracy: implicit.accuracy });

  // --- GRPO from SFT vs from base (claim 2) ---
  let rl: RlComparison | null = null;
  const rlStages: string[] = [];
  if (rlPlan && options.launchServices) {
    const curves: Record<string, RlPoint[]> = {};
    const finals: Record<string, string> = {};
    for (const [stage, start] of [['grpo-sft', sftDir], ['grpo-base', base.modelDir!]] as const) {
      begin(stage);
      const run = await runGrpo({
        runId: stage,
        outputDir: join(out, 'runs'),
        modelDir: start,
        promptsFile: taskFile('prompts.jsonl'),
        seed: plan.seed,
        settings: rlPlan,
        launch: options.launchServices,
        logger,
        signal: options.signal,
        // 'loss/policy' is the clipped surrogate (algorithms' PPO/GRPO loss), shown as the stage's loss.
        onStep: (p, totalSteps, metrics) => emit({ type: 'step', stage, step: p.step, totalSteps, metrics: { 'train/loss': metrics['loss/policy'] ?? Number.NaN, ...metrics } }),
      });
      curves[stage] = run.points;
      finals[stage] = run.modelDir;
      rlStages.push(stage);
      const last = run.points[run.points.length - 1];
      end('train', { steps: last.step, samples: last.samples, 'objective/scores': last.score, 'objective/kl': last.kl }, run.runDir);
    }
    begin('eval-grpo');
    const fromSft = await evaluateModel('grpo-from-sft', finals['grpo-sft'], mainSize, false);
    const fromBase = await evaluateModel('grpo-from-base', finals['grpo-base'], 0, false);
    end('eval', { accuracy_from_sft: fromSft.accuracy, accuracy_from_base: fromBase.accuracy, format_rate_from_sft: fromSft.formatRate, format_rate_from_base: fromBase.formatRate });
    const best = Math.max(...curves['grpo-sft'].map((p) => p.score), ...curves['grpo-base'].map((p) => p.score));
    const threshold = best > 0 ? best / 2 : Number.POSITIVE_INFINITY;
    rl = {
      fromSft: curves['grpo-sft'],
      fromBase: curves['grpo-base'],
      threshold,
      samplesFromSft: samplesToReach(curves['grpo-sft'], threshold),
      samplesFromBase: samplesToReach(curves['grpo-base'], threshold),
      meanKlFromSft: mean(curves['grpo-sft'].map((p) => p.kl)),
      meanKlFromBase: mean(curves['grpo-base'].map((p) => p.kl)),
    };
  }

  const result: Omit<PipelineResult, 'claims'> = {
    plan,
    outDir: out,
    backend: `${backend.name} (tfjs ${backend.version}, ${backend.threads} thread${backend.threads === 1 ? '' : 's'})`,
    stages,
    models,
    rewardModelAccuracy,
    dpoImplicitRewardAccuracy,
    rlStages,
    rlNote,
    rl,
    totalSeconds: (Date.now() - t0) / 1000,
  };
  return { ...result, claims: assessClaims(result) };
}
