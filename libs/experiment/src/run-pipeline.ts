/**
 * The demo / experiment pipeline as plain functions over directories:
 *
 *   task data -> base model (shipped, or rebuilt with --from-scratch) -> eval base
 *   -> SFT (each sweep size) -> eval
 *   -> reward model (style pairs) -> PPO with the reward model and a KL penalty to SFT -> eval
 *   -> DPO from SFT (style pairs) -> eval
 *   -> GRPO from SFT and from base (verifiable reward) -> eval both
 *
 * Offline stages are libs/training `runStage` runs, RL stages libs/rl runs
 * over the serving tier (services started by an injected launcher), all under
 * <out>/runs/<stage>/. Every model is evaluated on held-out problems: answer
 * accuracy and format rate (greedy), the preferred-style rate and the style
 * entropy (exact, from the model's probabilities), and how it ranks the
 * held-out style pairs and correctness pairs. The claims are judged from these
 * numbers and their standard errors (assess-claims.ts).
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describeBackend, getBackendInfo, initBackend } from '@posttrain/backend';
import { loadModel } from '@posttrain/model';
import { CORRECT_COMPONENT, FORMAT_COMPONENT, PREFERRED_STYLE, REPLY_STYLES, STYLE_OPENINGS, writeTaskFiles } from '@posttrain/task';
import { loadTokenizer } from '@posttrain/tokenizer';
import { parseRunConfig, runStage } from '@posttrain/training';
import type { RunResult } from '@posttrain/training';
import { createLogger } from '@posttrain/telemetry';
import { assessClaims } from './assess-claims';
import type { CompetenceResult } from './base-model';
import { baseTaskOptions, buildBaseModel, competenceOf, readProsePrompts } from './base-model';
import { evaluateAnswers } from './evaluate-answers';
import { evaluatePreferences, meanAndStderr, measureStyle, modelCompleteFn, pairLogProbs, tokenizePairs } from './model-evaluation';
import type { PipelinePlan, TrainSettings } from './pipeline-plan';
import { sftSizesOf, stageSteps } from './pipeline-plan';
import { readEvalData } from './read-eval-data';
import type { FailedPromptsFile } from './select-failed-prompts';
import { writeFailedPrompts } from './select-failed-prompts';
import type { RlStageOptions } from './run-rl-stage';
import { runRlStage } from './run-rl-stage';
import type { Estimate, ModelEvaluation, PipelineResult, RlCurve, RunPipelineOptions, StageOutcome } from './pipeline-types';
import { PipelineCancelledError } from './pipeline-types';

/** The `train:` section of a stage (on `examples` records, for a `maxSteps` cap; see stageSteps). */
function trainConfig(plan: PipelinePlan, t: TrainSettings, examples?: number): Record<string, unknown> {
  const steps = examples === undefined ? t.steps : stageSteps(t, examples);
  return {
    ...(steps !== null ? { max_steps: steps } : {}),
    epochs: t.epochs,
    batch_size: t.batchSize,
    learning_rate: t.learningRate,
    lr_scheduler: 'cosine',
    warmup_ratio: 0.05,
    logging_steps: plan.quick ? 1 : 5,
  };
}

const fraction = (xs: readonly boolean[]): Estimate => {
  const m = meanAndStderr(xs.map((x) => (x ? 1 : 0)));
  return { value: m.mean, stderr: m.stderr };
};

/** The stage list of a plan, in order, with titles (for progress "stage i of n"). */
export function pipelineStages(plan: PipelinePlan, options: { fromScratch: boolean; rl: boolean }): [string, string][] {
  const sweepSizes = sftSizesOf(plan);
  return [
    ['task', 'generate the arithmetic task'],
    ...(options.fromScratch ? ([['pretrain', 'pretrain the tiny base model on the corpus']] as [string, string][]) : []),
    ['eval-base', 'evaluate the base model (chat format, and plain text)'],
    ...sweepSizes.flatMap((n): [string, string][] => [
      [`sft-${n}`, `SFT on ${n} examples`],
      [`eval-sft-${n}`, `evaluate SFT (${n} examples)`],
    ]),
    ['rm', 'train the reward model on the style pairs'],
    ...(options.rl && plan.ppo
      ? ([
          ['ppo', 'PPO from SFT with the reward model and a KL penalty to SFT (services on loopback)'],
          ['eval-ppo', 'evaluate the PPO model'],
        ] as [string, string][])
      : []),
    ['dpo', 'DPO from the SFT model on the style pairs'],
    ['eval-dpo', 'evaluate the DPO model'],
    ...(options.rl && plan.grpo
      ? ([
          ['grpo-sft', `GRPO from the SFT model${plan.grpo.promptFilter === 'failed' ? ' on the prompts it answers wrong' : ''} (services on loopback)`],
          ['grpo-base', `GRPO from the base model${plan.grpo.promptFilter === 'failed' ? ' on the prompts it answers wrong' : ''} (services on loopback)`],
          ['eval-grpo', 'evaluate both GRPO models'],
        ] as [string, string][])
      : []),
  ];
}

/**
 * Runs the plan into `outDir` (created; it must not already hold a pipeline
 * run) and returns every stage's timing and metrics, the per-model
 * evaluations, the RL curves and the claims. Cancelling through `signal`
 * stops at the next step boundary with a PipelineCancelledError.
 */
export async function runPipeline(plan: PipelinePlan, outDir: string, options: RunPipelineOptions = {}): Promise<PipelineResult> {
  const out = resolve(outDir);
  if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`out: ${out} already exists and is not empty; choose another directory or remove it`);
  const fromScratch = options.fromScratch ?? false;
  if (!fromScratch && !options.baseModelDir) throw new Error('baseModelDir: no base model given; pass the shipped models/tiny-arith-base or rebuild it with fromScratch');
  if (!fromScratch && !existsSync(join(options.baseModelDir!, 'config.json'))) throw new Error(`baseModelDir: ${options.baseModelDir} holds no config.json; expected a model directory such as models/tiny-arith-base`);
  await mkdir(out, { recursive: true });
  const t0 = Date.now();
  const emit = options.onEvent ?? (() => undefined);
  const logger = options.logger ?? createLogger({ service: 'trainer', level: 'warn', sink: (line) => process.stderr.write(line + '\n') });
  if (getBackendInfo() === null) await initBackend({ logger: { info: () => undefined } });
  const backend = getBackendInfo()!;

  const sweepSizes = sftSizesOf(plan);
  const mainSize = plan.mainSftSize;
  const launch = options.launchServices ?? null;
  const titles = pipelineStages(plan, { fromScratch, rl: launch !== null });
  const rlNote = launch
    ? `PPO${plan.ppo ? '' : ' (not in the plan)'} and GRPO${plan.grpo ? '' : ' (not in the plan)'} ran over the serving tier on loopback`
    : 'PPO / GRPO did not run: no service launcher was given (the serving tier is needed), so claims 2 and 4 are not measured';
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
  /** One offline training stage, begun and ended as a pipeline stage (its metrics: the last eval and the step count). */
  const train = async (stage: string, raw: Record<string, unknown>): Promise<RunResult> => {
    begin(stage);
    const config = parseRunConfig({ output_dir: join(out, 'runs'), run_id: stage, seed: plan.seed, ...raw }, `${stage} stage`);
    const result = await runStage(config, {
      signal: options.signal,
      logger,
      progress: false,
      callbacks: { onStep: (e) => emit({ type: 'step', stage, step: e.step, totalSteps: e.totalSteps, metrics: e.metrics }) },
    });
    if (result.status !== 'completed' || result.modelDir === null) throw new PipelineCancelledError(stage);
    end('train', { ...(result.lastEval ?? {}), steps: result.step }, result.runDir);
    return result;
  };

  // --- task data: the base model's slice and held-out problems, post-training sizes from the plan ---
  begin('task');
  const taskDir = join(out, 'task');
  // The main line's SFT problems are drawn first, so a sweep's larger sizes change no other file: the
  // experiment's task is the demo's, plus the SFT data of the sizes above it.
  const manifest = await writeTaskFiles(taskDir, { ...baseTaskOptions(plan.base), ...plan.task, sftCoreSize: plan.mainSftSize });
  end('data', Object.fromEntries(manifest.files.map((f) => [`records/${f.name}`, f.records])));
  const taskFile = (name: string): string => join(taskDir, name);
  const prompts = await readEvalData(taskFile('prompts-eval.jsonl'));
  const stylePairs = await readEvalData(taskFile('preference-eval.jsonl'));
  const correctnessPairs = await readEvalData(taskFile('preference-correct-eval.jsonl'));
  if (prompts.kind !== 'answers' || stylePairs.kind !== 'preferences' || correctnessPairs.kind !== 'preferences') throw new Error(`task files in ${taskDir} are not in the expected formats`);
  const evalItems = prompts.items.slice(0, plan.eval.prompts);

  // --- base model ---
  let baseDir: string;
  let competence: CompetenceResult | null = null;
  if (fromScratch) {
    begin('pretrain');
    const built = await buildBaseModel(plan.base, join(out, 'base'), {
      signal: options.signal,
      logger,
      command: `posttrain ${plan.name} --from-scratch${plan.quick ? ' --quick' : ''}`,
      onStep: (step, totalSteps, metrics) => emit({ type: 'step', stage: 'pretrain', step, totalSteps, metrics }),
    });
    baseDir = built.modelDir;
    competence = built.competence;
    end('train', { ...built.corpusEval, steps: built.steps, competence: built.competence.accuracy }, built.runDir);
  } else {
    baseDir = resolve(options.baseModelDir!);
  }

  const models: ModelEvaluation[] = [];
  const pairCache = new Map<string, ReturnType<typeof pairLogProbs>>();
  const evaluateModel = async (name: string, dir: string, sftExamples: number, withCompetence = false): Promise<ModelEvaluation> => {
    const model = await loadModel(dir);
    const tokenizer = await loadTokenizer(dir);
    try {
      const answers = await evaluateAnswers(evalItems, modelCompleteFn(model, tokenizer, { maxNewTokens: plan.eval.maxNewTokens, temperature: 0 }));
      const correct = answers.samples.map((s) => (s.components[CORRECT_COMPONENT] ?? 0) > 0);
      const formatted = answers.samples.map((s) => (s.components[FORMAT_COMPONENT] ?? 0) > 0);
      const styleLps = pairLogProbs(model, tokenizePairs(stylePairs.lines.slice(0, plan.eval.pairs), tokenizer, stylePairs.file));
      pairCache.set(name, styleLps);
      const correctnessLps = pairLogProbs(model, tokenizePairs(correctnessPairs.lines.slice(0, plan.eval.pairs), tokenizer, correctnessPairs.file));
      const rankedRight = (lps: ReturnType<typeof pairLogProbs>): boolean[] => lps.chosenLogProbs.map((c, i) => c > lps.rejectedLogProbs[i]);
      const otherStyle = REPLY_STYLES.find((x) => x !== PREFERRED_STYLE)!;
      const style = measureStyle(
        model,
        tokenizer,
        evalItems.map((it) => it.prompt),
        STYLE_OPENINGS[PREFERRED_STYLE],
        STYLE_OPENINGS[otherStyle],
      );
      let comp: Estimate | null = null;
      if (withCompetence) {
        const c = competence ?? (await competenceOf(model, tokenizer, await readProsePrompts(taskFile('prose-eval.jsonl'), plan.eval.prosePrompts), plan.base.competence.maxNewTokens));
        competence = c;
        comp = { value: c.accuracy, stderr: c.stderr };
      }
      const row: ModelEvaluation = {
        model: name,
        sftExamples,
        accuracy: fraction(correct),
        formatRate: fraction(formatted),
        correct,
        styleRate: { value: style.rate, stderr: style.rateStderr },
        styleShare: { value: style.share, stderr: style.shareStderr },
        styleEntropy: { value: style.entropy, stderr: style.entropyStderr },
        styleRanking: fraction(rankedRight(styleLps)),
        correctnessRanking: fraction(rankedRight(correctnessLps)),
        competence: comp,
        example: { prompt: answers.samples[0].prompt, reply: answers.samples[0].completion, answer: answers.samples[0].answer },
      };
      models.push(row);
      return row;
    } finally {
      model.dispose();
    }
  };
  const evalMetrics = (m: ModelEvaluation): Record<string, number> => ({
    accuracy: m.accuracy.value,
    format_rate: m.formatRate.value,
    style_rate: m.styleRate.value,
    style_share: m.styleShare.value,
    style_entropy: m.styleEntropy.value,
    style_ranking: m.styleRanking.value,
    correctness_ranking: m.correctnessRanking.value,
    ...(m.competence ? { competence: m.competence.value } : {}),
  });

  begin('eval-base');
  const baseRow = await evaluateModel('base', baseDir, 0, true);
  end('eval', evalMetrics(baseRow));

  // --- SFT (and the sweep) ---
  let sftDir = '';
  for (const n of sweepSizes) {
    const sft = await train(`sft-${n}`, {
      stage: 'sft',
      model: baseDir,
      dataset: { train: taskFile(`sft-${n}.jsonl`), eval: taskFile('sft-eval.jsonl') },
      train: trainConfig(plan, plan.sft, n),
      sft: { max_length: plan.base.pretrain.maxLength },
    });
    begin(`eval-sft-${n}`);
    end('eval', evalMetrics(await evaluateModel(`sft-${n}`, sft.modelDir!, n)));
    if (n === mainSize) sftDir = sft.modelDir!;
  }

  // --- reward model on the style pairs ---
  const stylePairsDataset = { train: taskFile('preference.jsonl'), eval: taskFile('preference-eval.jsonl') };
  const rm = await train('rm', {
    stage: 'rm',
    model: sftDir,
    dataset: stylePairsDataset,
    train: trainConfig(plan, plan.rm),
    rm: { max_length: plan.base.pretrain.maxLength },
  });
  const rmAccuracy = rm.lastEval?.['eval/rewards/accuracies'] ?? Number.NaN;
  const rmPairs = stylePairs.lines.length;
  const rewardModelAccuracy: Estimate = { value: rmAccuracy, stderr: Math.sqrt((rmAccuracy * (1 - rmAccuracy)) / rmPairs) };

  const rl: RlCurve[] = [];
  /** One online RL stage; `extra` (filled in by `run`, for GRPO's prompt selection) joins its metrics. */
  const rlStage = async (stage: string, run: (onStep: NonNullable<RlStageOptions['onStep']>) => ReturnType<typeof runRlStage>, extra: Record<string, number> = {}): Promise<string> => {
    begin(stage);
    const result = await run((p, totalSteps, metrics, samples) => emit({ type: 'step', stage, step: p.step, totalSteps, metrics: { 'train/loss': metrics['loss/policy'] ?? Number.NaN, ...metrics }, samples }));
    rl.push({ stage, points: result.points });
    const last = result.points[result.points.length - 1];
    end('train', { steps: last.step, samples: last.samples, 'objective/scores': last.score, 'objective/kl': last.kl, ...(last.accuracy !== null ? { 'rewards/correct': last.accuracy } : {}), ...extra }, result.runDir);
    return result.modelDir;
  };
  const rlCommon = { outputDir: join(out, 'runs'), promptsFile: taskFile('prompts.jsonl'), seed: plan.seed, logger, signal: options.signal };
  /** Writes to `to` the first `want` RL prompts (file order) the model in `dir` answers wrong, greedily (GRPO's promptFilter 'failed'). */
  const failedPrompts = async (dir: string, want: number, to: string): Promise<FailedPromptsFile> => {
    const model = await loadModel(dir);
    const tokenizer = await loadTokenizer(dir);
    try {
      return await writeFailedPrompts(rlCommon.promptsFile, modelCompleteFn(model, tokenizer, { maxNewTokens: plan.grpo!.maxNewTokens, temperature: 0 }), to, { want });
    } finally {
      model.dispose();
    }
  };

  // --- PPO with the reward model, KL to SFT (classic RLHF) ---
  if (launch && plan.ppo) {
    const ppo = plan.ppo;
    const ppoDir = await rlStage('ppo', (onStep) => runRlStage({ ...rlCommon, runId: 'ppo', modelDir: sftDir, launch, algorithm: 'ppo', settings: ppo, rewardModelDir: rm.modelDir!, onStep }));
    begin('eval-ppo');
    end('eval', evalMetrics(await evaluateModel('ppo', ppoDir, mainSize)));
  }

  // --- DPO on the style pairs ---
  const dpo = await train('dpo', {
    stage: 'dpo',
    model: sftDir,
    dataset: stylePairsDataset,
    train: trainConfig(plan, plan.dpo),
    dpo: { max_length: plan.base.pretrain.maxLength, beta: plan.dpo.beta, loss_type: plan.dpo.lossType, rpo_alpha: plan.dpo.rpoAlpha },
  });
  begin('eval-dpo');
  const dpoRow = await evaluateModel('dpo', dpo.modelDir!, mainSize);
  const implicit = evaluatePreferences(pairCache.get('dpo')!, pairCache.get(`sft-${mainSize}`)!).implicitReward!;
  end('eval', { ...evalMetrics(dpoRow), implicit_reward_accuracy: implicit.accuracy });

  // --- GRPO from SFT vs from base (claim 2) ---
  if (launch && plan.grpo) {
    const grpo = plan.grpo;
    const finals: Record<string, string> = {};
    for (const [stage, start] of [
      ['grpo-sft', sftDir],
      ['grpo-base', baseDir],
    ] as const) {
      const selected: Record<string, number> = {};
      finals[stage] = await rlStage(
        stage,
        async (onStep) => {
          let promptsFile = rlCommon.promptsFile;
          if (grpo.promptFilter === 'failed') {
            const keptFile = join(out, 'runs', `${stage}-prompts.jsonl`);
            const kept = await failedPrompts(start, grpo.steps * grpo.promptsPerStep, keptFile);
            Object.assign(selected, { prompts_scanned: kept.scanned, prompts_kept: kept.lines.length });
            if (kept.written) promptsFile = keptFile;
            else logger?.warn('the start model answers every scanned RL prompt right; GRPO trains on all of them', { stage, scanned: kept.scanned });
          }
          return runRlStage({ ...rlCommon, promptsFile, runId: stage, modelDir: start, launch, algorithm: 'grpo', settings: grpo, onStep });
        },
        selected,
      );
    }
    begin('eval-grpo');
    const fromSft = await evaluateModel('grpo-from-sft', finals['grpo-sft'], mainSize);
    const fromBase = await evaluateModel('grpo-from-base', finals['grpo-base'], 0);
    end('eval', { accuracy_from_sft: fromSft.accuracy.value, accuracy_from_base: fromBase.accuracy.value, format_rate_from_sft: fromSft.formatRate.value, format_rate_from_base: fromBase.formatRate.value });
  }

  const comp = baseRow.competence!;
  const result: Omit<PipelineResult, 'claims'> = {
    plan,
    outDir: out,
    backend: describeBackend(backend),
    baseModel: { dir: baseDir, fromScratch, competence: comp },
    stages,
    models,
    rewardModelAccuracy,
    dpoImplicitRewardAccuracy: implicit.accuracy,
    rl,
    rlNote,
    totalSeconds: (Date.now() - t0) / 1000,
  };
  return { ...result, claims: assessClaims(result) };
}
