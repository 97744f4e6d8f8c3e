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
 * <out>/runs/<stage>/. Stages that do not need each other run at once, up to
 * `lanes` of them (stage-lanes.ts): GRPO from base beside SFT, then the
 * reward model, DPO and GRPO from SFT beside each other. Every model is evaluated on held-out problems: answer
 * accuracy and format rate (greedy), the preferred-style rate and the style
 * entropy (exact, from the model's probabilities), and how it ranks the
 * held-out style pairs and correctness pairs. The claims are judged from these
 * numbers and their standard errors (assess-claims.ts).
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describeBackend, getBackendInfo, initBackend } from '@posttrain/backend';
import { writeTaskFiles } from '@posttrain/task';
import { createLogger } from '@posttrain/telemetry';
import { assessClaims } from './assess-claims';
import type { CompetenceResult } from './base-model';
import { baseTaskOptions, buildBaseModel } from './base-model';
import type { PairLogProbs } from './model-evaluation';
import { evaluatePreferences } from './model-evaluation';
import type { PipelinePlan, TrainSettings } from './pipeline-plan';
import { sftSizesOf, stageSteps } from './pipeline-plan';
import { readEvalData } from './read-eval-data';
import { StageLanes } from './stage-lanes';
import type { JobStep, TrainJobResult } from './stage-jobs';
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

/** The stage list of a plan, in the report's order, with titles (progress counts stages as they start: "stage i of n"). */
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
          ['eval-grpo-sft', 'evaluate GRPO from SFT'],
          ['grpo-base', `GRPO from the base model${plan.grpo.promptFilter === 'failed' ? ' on the prompts it answers wrong' : ''} (services on loopback)`],
          ['eval-grpo-base', 'evaluate GRPO from base'],
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
  // A failing stage stops the others at their next step boundary; the first failure is what the pipeline throws.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const signal = stop.signal;
  // libtensorflow (tensorflow, tensorflow-gpu) spreads one stage over every core or the GPU already, and its
  // addon is not loaded in worker threads here: its stages run one after another.
  const lanes = new StageLanes({ lanes: backend.name === 'wasm' || backend.name === 'cpu' ? (options.lanes ?? 1) : 1, signal, logger });
  let begun = 0;
  /** Marks `stage` started (when it holds its lane) and returns its start time. */
  const begin = (stage: string): number => {
    if (signal.aborted) throw new PipelineCancelledError(stage);
    const index = titles.findIndex(([s]) => s === stage);
    emit({ type: 'stage-start', stage, title: titles[index][1], index: ++begun, total: titles.length });
    return Date.now();
  };
  const end = (stage: string, started: number, kind: StageOutcome['kind'], metrics: Record<string, number>, runDir: string | null = null): void => {
    const title = titles.find(([s]) => s === stage)![1];
    const seconds = (Date.now() - started) / 1000;
    stages.push({ stage, title, kind, seconds, runDir, metrics });
    emit({ type: 'stage-end', stage, title, seconds, metrics });
  };
  const onStep = (stage: string) => (e: JobStep) => emit({ type: 'step', stage, step: e.step, totalSteps: e.totalSteps, metrics: e.metrics });
  /** One offline training stage in a lane (its metrics: the last eval and the step count). */
  const train = (stage: string, raw: Record<string, unknown>): Promise<TrainJobResult> =>
    lanes.hold(async () => {
      const started = begin(stage);
      const result = await lanes.runHeld(stage, { kind: 'train', stage, config: { output_dir: join(out, 'runs'), run_id: stage, seed: plan.seed, ...raw } }, onStep(stage));
      end(stage, started, 'train', { ...(result.lastEval ?? {}), steps: result.step }, result.runDir);
      return result;
    });

  try {
    // --- task data: the base model's slice and held-out problems, post-training sizes from the plan ---
    const taskStarted = begin('task');
    const taskDir = join(out, 'task');
    // The main line's SFT problems are drawn first, so a sweep's larger sizes change no other file: the
    // experiment's task is the demo's, plus the SFT data of the sizes above it.
    const manifest = await writeTaskFiles(taskDir, { ...baseTaskOptions(plan.base), ...plan.task, sftCoreSize: plan.mainSftSize });
    end('task', taskStarted, 'data', Object.fromEntries(manifest.files.map((f) => [`records/${f.name}`, f.records])));
    const taskFile = (name: string): string => join(taskDir, name);

    // --- base model ---
    let baseDir: string;
    let competence: CompetenceResult | null = null;
    if (fromScratch) {
      const started = begin('pretrain');
      const built = await buildBaseModel(plan.base, join(out, 'base'), {
        signal,
        logger,
        command: `posttrain ${plan.name} --from-scratch${plan.quick ? ' --quick' : ''}`,
        onStep: (step, totalSteps, metrics) => emit({ type: 'step', stage: 'pretrain', step, totalSteps, metrics }),
      });
      baseDir = built.modelDir;
      competence = built.competence;
      end('pretrain', started, 'train', { ...built.corpusEval, steps: built.steps, competence: built.competence.accuracy }, built.runDir);
    } else {
      baseDir = resolve(options.baseModelDir!);
    }

    const models: { stage: string; row: ModelEvaluation }[] = [];
    const styleLogProbs = new Map<string, PairLogProbs>();
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
    /** An evaluation stage in a lane: the model in `dir` as row `name` of the table (stage-jobs.ts). */
    const evaluate = (stage: string, name: string, dir: string, sftExamples: number, extra?: (row: ModelEvaluation) => Record<string, number>): Promise<ModelEvaluation> =>
      lanes.hold(async () => {
        const started = begin(stage);
        const withCompetence = name === 'base';
        const r = await lanes.runHeld(stage, {
          kind: 'evaluate',
          name,
          dir,
          sftExamples,
          taskDir,
          eval: plan.eval,
          competenceMaxNewTokens: withCompetence ? plan.base.competence.maxNewTokens : null,
          knownCompetence: withCompetence ? competence : null,
        });
        if (r.competence) competence = r.competence;
        models.push({ stage, row: r.row });
        styleLogProbs.set(name, r.styleLogProbs);
        end(stage, started, 'eval', { ...evalMetrics(r.row), ...(extra?.(r.row) ?? {}) });
        return r.row;
      });

    const rl: RlCurve[] = [];
    const rlCommon = { outputDir: join(out, 'runs'), promptsFile: taskFile('prompts.jsonl'), seed: plan.seed, logger, signal };
    /** One online RL stage in a lane; `extra` (filled in by `run`, for GRPO's prompt selection) joins its metrics. */
    const rlStage = (stage: string, run: (onStep: NonNullable<RlStageOptions['onStep']>) => ReturnType<typeof runRlStage>, extra: Record<string, number> = {}): Promise<string> =>
      lanes.hold(async () => {
        const started = begin(stage);
        const result = await run((p, totalSteps, metrics, samples) => emit({ type: 'step', stage, step: p.step, totalSteps, metrics: { 'train/loss': metrics['loss/policy'] ?? Number.NaN, ...metrics }, samples }));
        rl.push({ stage, points: result.points });
        const last = result.points[result.points.length - 1];
        end(stage, started, 'train', { steps: last.step, samples: last.samples, 'objective/scores': last.score, 'objective/kl': last.kl, ...(last.accuracy !== null ? { 'rewards/correct': last.accuracy } : {}), ...extra }, result.runDir);
        return result.modelDir;
      });
    /** GRPO from `start` (claim 2), on the RL prompts it answers wrong when the plan filters them. */
    const grpoStage = (stage: 'grpo-sft' | 'grpo-base', start: string): Promise<string> => {
      const grpo = plan.grpo!;
      const selected: Record<string, number> = {};
      return rlStage(
        stage,
        async (onStepRl) => {
          let promptsFile = rlCommon.promptsFile;
          if (grpo.promptFilter === 'failed') {
            const keptFile = join(out, 'runs', `${stage}-prompts.jsonl`);
            const kept = await lanes.runHeld(stage, { kind: 'failed-prompts', dir: start, promptsFile: rlCommon.promptsFile, maxNewTokens: grpo.maxNewTokens, want: grpo.steps * grpo.promptsPerStep, to: keptFile });
            Object.assign(selected, { prompts_scanned: kept.scanned, prompts_kept: kept.lines.length });
            if (kept.written) promptsFile = keptFile;
            else logger?.warn('the start model answers every scanned RL prompt right; GRPO trains on all of them', { stage, scanned: kept.scanned });
          }
          return runRlStage({ ...rlCommon, promptsFile, runId: stage, modelDir: start, launch: launch!, algorithm: 'grpo', settings: grpo, onStep: onStepRl });
        },
        selected,
      );
    };

    // The stages as a graph, each started when what it needs is done and a lane is free (first come, first
    // served): the main SFT first, as everything after it waits for it; beside it the base model's own line.
    const pending: Promise<unknown>[] = [];
    const track = <T>(p: Promise<T>): Promise<T> => {
      pending.push(p);
      p.catch(() => stop.abort());
      return p;
    };
    const sftRuns = new Map<number, Promise<TrainJobResult>>();
    const sftOf = (n: number): Promise<TrainJobResult> =>
      train(`sft-${n}`, {
        stage: 'sft',
        model: baseDir,
        dataset: { train: taskFile(`sft-${n}.jsonl`), eval: taskFile('sft-eval.jsonl') },
        train: trainConfig(plan, plan.sft, n),
        sft: { max_length: plan.base.pretrain.maxLength },
      });
    sftRuns.set(mainSize, track(sftOf(mainSize)));
    const baseRowP = track(evaluate('eval-base', 'base', baseDir, 0));
    if (launch && plan.grpo) {
      const fromBase = track(grpoStage('grpo-base', baseDir));
      track(fromBase.then((dir) => evaluate('eval-grpo-base', 'grpo-from-base', dir, 0)));
    }
    for (const n of sweepSizes) if (!sftRuns.has(n)) sftRuns.set(n, track(sftOf(n)));
    const sftEvals = new Map(sweepSizes.map((n) => [n, track(sftRuns.get(n)!.then((r) => evaluate(`eval-sft-${n}`, `sft-${n}`, r.modelDir, n)))]));
    /** The first failure among the stages, thrown once every stage has settled (a failure stops the rest at their next step boundary). */
    const settleAll = async (): Promise<void> => {
      const settled = await Promise.allSettled(pending);
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected' && !(r.reason instanceof PipelineCancelledError)) ?? settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    };
    const sftDir = await sftRuns.get(mainSize)!.then(
      (r) => r.modelDir,
      async (e: unknown) => {
        await settleAll();
        throw e;
      },
    );

    // --- reward model on the style pairs, then PPO with it and a KL penalty to SFT (classic RLHF) ---
    const stylePairsDataset = { train: taskFile('preference.jsonl'), eval: taskFile('preference-eval.jsonl') };
    const rmP = track(
      train('rm', {
        stage: 'rm',
        model: sftDir,
        dataset: stylePairsDataset,
        train: trainConfig(plan, plan.rm),
        // Scores served standardised by their spread on the held-out pairs, so that PPO's KL coefficient
        // weighs the same pull whatever scale a seed's reward model learned.
        rm: { max_length: plan.base.pretrain.maxLength, normalize_reward: true },
      }),
    );
    // --- GRPO from SFT (claim 2) ---
    if (launch && plan.grpo) {
      const fromSft = track(grpoStage('grpo-sft', sftDir));
      track(fromSft.then((dir) => evaluate('eval-grpo-sft', 'grpo-from-sft', dir, mainSize)));
    }
    // --- DPO on the style pairs; its implicit reward compares it with SFT on the same pairs ---
    const dpoP = track(
      train('dpo', {
        stage: 'dpo',
        model: sftDir,
        dataset: stylePairsDataset,
        train: trainConfig(plan, plan.dpo),
        dpo: { max_length: plan.base.pretrain.maxLength, beta: plan.dpo.beta, loss_type: plan.dpo.lossType, rpo_alpha: plan.dpo.rpoAlpha },
      }),
    );
    const dpoRowP = track(
      Promise.all([dpoP, sftEvals.get(mainSize)!]).then(([dpo]) =>
        evaluate('eval-dpo', 'dpo', dpo.modelDir, mainSize, () => ({ implicit_reward_accuracy: evaluatePreferences(styleLogProbs.get('dpo')!, styleLogProbs.get(`sft-${mainSize}`)!).implicitReward!.accuracy })),
      ),
    );
    if (launch && plan.ppo) {
      const ppo = plan.ppo;
      const ppoDir = track(rmP.then((rm) => rlStage('ppo', (onStepRl) => runRlStage({ ...rlCommon, runId: 'ppo', modelDir: sftDir, launch, algorithm: 'ppo', settings: ppo, rewardModelDir: rm.modelDir, onStep: onStepRl }))));
      track(ppoDir.then((dir) => evaluate('eval-ppo', 'ppo', dir, mainSize)));
    }

    await settleAll();

    const rm = await rmP;
    const rmAccuracy = rm.lastEval?.['eval/rewards/accuracies'] ?? Number.NaN;
    const stylePairs = await readEvalData(taskFile('preference-eval.jsonl'));
    const rmPairs = stylePairs.kind === 'preferences' ? stylePairs.lines.length : Number.NaN;
    const rewardModelAccuracy: Estimate = { value: rmAccuracy, stderr: Math.sqrt((rmAccuracy * (1 - rmAccuracy)) / rmPairs) };
    const implicit = evaluatePreferences(styleLogProbs.get('dpo')!, styleLogProbs.get(`sft-${mainSize}`)!).implicitReward!;
    await dpoRowP;
    const baseRow = await baseRowP;

    // Stages, rows and curves in the plan's order, whatever order the lanes finished them in.
    const order = (stage: string): number => titles.findIndex(([s]) => s === stage);
    stages.sort((a, b) => order(a.stage) - order(b.stage));
    models.sort((a, b) => order(a.stage) - order(b.stage));
    rl.sort((a, b) => order(a.stage) - order(b.stage));
    const result: Omit<PipelineResult, 'claims'> = {
      plan,
      outDir: out,
      backend: describeBackend(backend),
      baseModel: { dir: baseDir, fromScratch, competence: baseRow.competence! },
      stages,
      models: models.map((m) => m.row),
      rewardModelAccuracy,
      dpoImplicitRewardAccuracy: implicit.accuracy,
      rl,
      rlNote,
      lanes: lanes.lanes,
      totalSeconds: (Date.now() - t0) / 1000,
    };
    return { ...result, claims: assessClaims(result) };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await lanes.close();
  }
}
