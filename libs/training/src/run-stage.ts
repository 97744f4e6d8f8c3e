/**
 * The stage runner: one offline training run (causal LM, SFT, reward model,
 * DPO) in this process, from a validated RunConfig to runs/<id>/.
 *
 * One optimizer step = gradient_accumulation_steps micro-batches:
 *   grads = sum_k d(loss_k / K)/d(params)   (tf.variableGrads per micro-batch)
 *   norm = ||grads||_2 (global); non-finite loss or norm -> skip the step (logged; too many in a row -> error)
 *   clip to max_grad_norm; AdamW with lr = schedule(step)
 * Steps are numbered from 1; the schedule sees the 0-based index (as HF's LambdaLR).
 * Between steps the runner checks the AbortSignal (cancel at a step boundary,
 * keeping the last checkpoint), evaluates every eval_steps and checkpoints
 * every save_steps (and both at the end).
 *
 * Everything that shapes a step is either in the checkpoint (weights, AdamW
 * moments and t, data position, the RNG that draws dropout seeds, skip
 * counters) or a function of the step number (learning rate), so a resumed
 * run reproduces the uninterrupted one step for step.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { getBackendInfo, initBackend } from '@posttrain/backend';
import type { DataConfig, DataPosition, RecordSource } from '@posttrain/data';
import { IndexedDataFile, parseDataConfig } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { applyLora, loadLoraAdapter, loadModel, mergeLora, saveLoraAdapter, saveModel, sequenceLogProbs, withScoreHead } from '@posttrain/model';
import { Rng } from '@posttrain/random';
import type { Logger, MetricsSink } from '@posttrain/telemetry';
import { JsonlMetricsSink, TensorBoardMetricsSink, createLogger, fanOutMetricsSinks, truncateMetricsJsonl, writeRunReport } from '@posttrain/telemetry';
import { loadTokenizer } from '@posttrain/tokenizer';
import type { NamedVariable } from './adamw-optimizer';
import { AdamW } from './adamw-optimizer';
import { clipGradNorm } from './clip-grad-norm';
import type { ReferenceCache, ReferenceLogProbsFn } from './create-dpo-task';
import { computeReferenceCache, createDpoTask } from './create-dpo-task';
import { createRewardTask } from './create-reward-task';
import { createSftTask } from './create-sft-task';
import { learningRateAt, warmupStepsFor } from './learning-rate-at';
import type { LrSchedule } from './learning-rate-at';
import { ProgressReporter } from './progress-reporter';
import type { RunConfig } from './run-config';
import { RunConfigError } from './run-config';
import type { StageTask } from './stage-task';
import type { TrainerState } from './train-checkpoint';
import { listCheckpoints, pruneCheckpoints, readOptimizerTensors, readTrainerState, restoreExtraTrainables, saveCheckpoint } from './train-checkpoint';

export interface StepEvent {
  step: number;
  totalSteps: number;
  /** This step's metrics (train/loss, train/grad_norm, train/learning_rate, stage metrics). */
  metrics: Record<string, number>;
  skipped: boolean;
}

export interface RunCallbacks {
  onStep?(e: StepEvent): void;
  onEval?(e: { step: number; metrics: Record<string, number> }): void;
  onCheckpoint?(e: { step: number; path: string }): void;
}

export interface RunStageOptions {
  /** Cancels the run at the next step boundary; the last checkpoint is kept. */
  signal?: AbortSignal;
  callbacks?: RunCallbacks;
  logger?: Logger;
  /** DPO: reference log-probs from elsewhere (the reference service); default: a frozen local copy of the model. */
  referenceLogProbs?: ReferenceLogProbsFn;
  /** Progress bar / log lines on stderr; default true. */
  progress?: boolean;
  /**
   * Changes each micro-batch loss before differentiation (auxiliary terms, fault injection in
   * tests). Called inside tf.variableGrads; `step` is the 1-based optimizer step.
   */
  transformLoss?: (loss: tf.Scalar, ctx: { step: number; microStep: number }) => tf.Scalar;
}

export interface RunResult {
  runId: string;
  runDir: string;
  status: 'completed' | 'cancelled';
  /** Last completed step. */
  step: number;
  totalSteps: number;
  skippedSteps: number;
  /** Metrics of the last step and the last evaluation. */
  lastMetrics: Record<string, number>;
  lastEval: Record<string, number> | null;
  /** The trained model (HF layout; LoRA merged) when completed. */
  modelDir: string | null;
  /** The LoRA adapter (PEFT layout) when training LoRA and completed. */
  adapterDir: string | null;
}

/** Error that stops a run (too many skipped steps, missing data, nothing to resume). */
export class TrainingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingError';
  }
}

function timestampId(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}

/** Records [0, n) split into (train, eval) by a seeded shuffle: the first ceil(f * n) go to eval. */
class SubsetSource implements RecordSource {
  constructor(private readonly base: RecordSource, private readonly indices: number[]) {}
  get length(): number {
    return this.indices.length;
  }
  get(i: number) {
    if (!Number.isInteger(i) || i < 0 || i >= this.indices.length) throw new RangeError(`record index: expected an integer in [0, ${this.indices.length}), got ${i}`);
    return this.base.get(this.indices[i]);
  }
}

function splitSource(source: RecordSource, fraction: number, seed: number, file: string): { train: RecordSource; eval: RecordSource } {
  const n = source.length;
  const order = new Rng(seed).fork('eval-split').shuffle(Array.from({ length: n }, (_, i) => i));
  const k = Math.ceil(fraction * n);
  if (k < 1 || n - k < 1) throw new RunConfigError(`dataset.eval_fraction: ${fraction} of ${n} records in ${file} leaves ${n - k} for training and ${k} for evaluation; expected at least one each`);
  return { train: new SubsetSource(source, order.slice(k).sort((a, b) => a - b)), eval: new SubsetSource(source, order.slice(0, k).sort((a, b) => a - b)) };
}

async function openData(path: string, key: string, config: DataConfig): Promise<IndexedDataFile> {
  if (!existsSync(path)) throw new RunConfigError(`${key}: file ${JSON.stringify(path)} does not exist`);
  return IndexedDataFile.open(path, config);
}

function dataConfigFor(c: RunConfig, batchSize: number, shuffle: boolean): DataConfig {
  const d = c.dataset;
  const stage = c.lm ?? c.sft ?? c.rm ?? c.dpo;
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.fields)) if (v !== null) fields[k] = v;
  return parseDataConfig(
    {
      format: d.format,
      style: d.style,
      fields,
      errorPolicy: d.error_policy,
      truncation: d.truncation,
      shuffle,
      dropLast: shuffle ? d.drop_last : false,
      seed: c.seed,
      batchSize,
      maxLength: stage?.max_length ?? null,
      packing: c.lm?.packing ?? c.sft?.packing ?? false,
      assistantOnlyLoss: c.sft?.assistant_only_loss ?? true,
      completionOnlyLoss: c.sft?.completion_only_loss ?? true,
    },
    'dataset',
  );
}

/** Trainable parameters with stable names (HF names; adapters as `<module>.lora_A/B`). */
function namedTrainables(model: LlamaModel, scoreTrainsWithLora: boolean): { all: NamedVariable[]; loraExtra: NamedVariable[] } {
  if (model.lora) {
    const all: NamedVariable[] = [];
    for (const [prefix, w] of model.lora.adapters) all.push({ name: `${prefix}.lora_A`, variable: w.a }, { name: `${prefix}.lora_B`, variable: w.b });
    const loraExtra = scoreTrainsWithLora ? [{ name: 'score.weight', variable: model.weight('score.weight') }] : [];
    return { all: [...all, ...loraExtra], loraExtra };
  }
  return { all: [...model.weights].map(([name, variable]) => ({ name, variable })), loraExtra: [] };
}

/** A frozen local model as a ReferenceLogProbsFn. */
function localReference(model: LlamaModel, batchSize: number): ReferenceLogProbsFn {
  return async ({ sequences, promptLengths }) => sequenceLogProbs(model, sequences, { promptLengths, batchSize });
}

function cacheToJson(cache: ReferenceCache): Record<string, [number, number, number, number]> {
  const out: Record<string, [number, number, number, number]> = {};
  for (const [line, r] of cache) out[String(line)] = [r.chosen, r.rejected, r.chosenTokens, r.rejectedTokens];
  return out;
}

function cacheFromJson(raw: unknown, source: string): ReferenceCache {
  if (typeof raw !== 'object' || raw === null) throw new Error(`${source}: expected an object of line -> [chosen, rejected, chosenTokens, rejectedTokens]`);
  const cache: ReferenceCache = new Map();
  for (const [line, v] of Object.entries(raw)) {
    if (!Array.isArray(v) || v.length !== 4 || v.some((x) => typeof x !== 'number')) throw new Error(`${source}: entry ${line} is ${JSON.stringify(v)}, expected 4 numbers`);
    cache.set(Number(line), { chosen: v[0], rejected: v[1], chosenTokens: v[2], rejectedTokens: v[3] });
  }
  return cache;
}

/**
 * Runs a stage to completion (or cancellation). Writes <output_dir>/<run_id>/: config.json,
 * metrics.jsonl, TensorBoard events, checkpoints/step-N, model/ (and adapter/), report.html.
 */
export async function runStage(config: RunConfig, options: RunStageOptions = {}): Promise<RunResult> {
  const c = config;
  const log = options.logger ?? createLogger({ service: 'trainer', fields: { stage: c.stage } });
  if (getBackendInfo() === null) await initBackend(c.backend === null ? { logger: log } : { backend: c.backend, logger: log });
  const runId = c.run_id ?? `${c.stage}-${timestampId()}`;
  const runDir = resolve(c.output_dir, runId);
  const checkpoints = await listCheckpoints(runDir);
  if (c.resume && checkpoints.length === 0) throw new TrainingError(`resume: no checkpoint to resume from in ${join(runDir, 'checkpoints')}`);
  if (!c.resume && existsSync(join(runDir, 'metrics.jsonl'))) {
    throw new TrainingError(`run_id: ${runDir} already holds a run; set resume: true to continue it, or choose another run_id`);
  }
  const resumeFrom = c.resume ? checkpoints[checkpoints.length - 1] : null;
  const state0: TrainerState | null = resumeFrom ? await readTrainerState(resumeFrom.path) : null;
  if (state0 && state0.stage !== c.stage) throw new TrainingError(`resume: checkpoint ${resumeFrom!.path} is of stage ${state0.stage}, this run is ${c.stage}`);
  await mkdir(runDir, { recursive: true });
  const resolved = { ...c, run_id: runId };
  await writeFile(join(runDir, 'config.json'), JSON.stringify(resolved, null, 2) + '\n');

  if (!existsSync(join(c.model, 'config.json'))) throw new RunConfigError(`model: ${JSON.stringify(c.model)} is not a model directory (no config.json)`);

  // --- data ---
  const trainData = dataConfigFor(c, c.train.batch_size, c.dataset.shuffle);
  const evalData = dataConfigFor(c, c.train.eval_batch_size ?? c.train.batch_size, false);
  const trainFile = await openData(c.dataset.train, 'dataset.train', trainData);
  const openFiles: IndexedDataFile[] = [trainFile];
  let trainSource: RecordSource = trainFile;
  let evalSource: RecordSource | null = null;
  if (c.dataset.eval !== null) {
    const evalFile = await openData(c.dataset.eval, 'dataset.eval', evalData);
    openFiles.push(evalFile);
    evalSource = evalFile;
  }
  else if (c.dataset.eval_fraction > 0) ({ train: trainSource, eval: evalSource } = splitSource(trainFile, c.dataset.eval_fraction, c.seed, c.dataset.train));

  // --- model ---
  const tokenizer = await loadTokenizer(c.model);
  const loraRun = c.lora !== null;
  let model = await loadModel(!loraRun && resumeFrom ? join(resumeFrom.path, 'model') : c.model);
  if (c.stage === 'rm' && !model.heads.score) {
    const rm = withScoreHead(model, { seed: c.seed });
    model.dispose();
    model = rm;
  }
  if (c.stage !== 'rm' && !model.heads.lm) throw new RunConfigError(`model: ${c.model} has no LM head (a sequence-classification model); stage ${c.stage} needs one`);
  if (loraRun) {
    const settings = { r: c.lora!.r, alpha: c.lora!.alpha, dropout: c.lora!.dropout, targetModules: c.lora!.target_modules };
    if (resumeFrom) await loadLoraAdapter(model, join(resumeFrom.path, 'adapter'));
    else applyLora(model, settings, { seed: c.seed });
  }
  const { all: params, loraExtra } = namedTrainables(model, c.stage === 'rm');
  if (resumeFrom && loraRun && loraExtra.length > 0) await restoreExtraTrainables(resumeFrom.path, loraExtra);
  const vars = params.map((p) => p.variable);

  // --- stage task ---
  const position: DataPosition | undefined = state0?.dataPosition;
  let task: StageTask<unknown>;
  if (c.stage === 'lm' || c.stage === 'sft') {
    task = createSftTask({ model, tokenizer, train: trainSource, eval: evalSource, trainData, evalData, position }) as StageTask<unknown>;
  } else if (c.stage === 'rm') {
    task = createRewardTask({ model, tokenizer, train: trainSource, eval: evalSource, trainData, evalData, position, margin: c.rm!.margin, centerRewardsCoefficient: c.rm!.center_rewards_coefficient }) as StageTask<unknown>;
  } else {
    const d = c.dpo!;
    const cachePath = join(runDir, 'reference_logps.json');
    let trainCache: ReferenceCache;
    let evalCache: ReferenceCache | null = null;
    if (existsSync(cachePath)) {
      const raw = JSON.parse(await readFile(cachePath, 'utf8')) as { train?: unknown; eval?: unknown };
      trainCache = cacheFromJson(raw.train, cachePath);
      if (evalSource) evalCache = cacheFromJson(raw.eval, cachePath);
      log.info('reference log-probs loaded from cache', { path: cachePath, train: trainCache.size });
    } else {
      let refModel: LlamaModel | null = null;
      let ref = options.referenceLogProbs;
      if (!ref) {
        refModel = await loadModel(d.reference.model ?? c.model);
        ref = localReference(refModel, d.reference.batch_size);
      }
      try {
        const refData = { ...evalData, batchSize: d.reference.batch_size };
        trainCache = await computeReferenceCache(trainSource, tokenizer, refData, ref);
        if (evalSource) evalCache = await computeReferenceCache(evalSource, tokenizer, refData, ref);
      } finally {
        refModel?.dispose();
      }
      await writeFile(cachePath, JSON.stringify({ train: cacheToJson(trainCache), eval: evalCache ? cacheToJson(evalCache) : null }));
      log.info('reference log-probs computed', { train: trainCache.size, eval: evalCache?.size ?? 0 });
    }
    task = createDpoTask({ model, tokenizer, train: trainSource, eval: evalSource, trainData, evalData, position, trainCache, evalCache, beta: d.beta, lossType: d.loss_type, labelSmoothing: d.label_smoothing }) as StageTask<unknown>;
  }

  // --- schedule and optimizer ---
  const K = c.train.gradient_accumulation_steps;
  const totalSteps = state0?.totalSteps ?? c.train.max_steps ?? c.train.epochs * Math.max(1, Math.ceil((await task.countEpochBatches()) / K));
  const schedule: LrSchedule = { type: c.train.lr_scheduler, baseLr: c.train.learning_rate, warmupSteps: warmupStepsFor(c.train.warmup_steps, c.train.warmup_ratio, totalSteps), totalSteps };
  const optimizer = new AdamW(params, { beta1: c.train.adam_beta1, beta2: c.train.adam_beta2, epsilon: c.train.adam_epsilon, weightDecay: c.train.weight_decay });
  let rng = new Rng(c.seed).fork('dropout');
  let step = 0;
  let consecutiveSkips = 0;
  let skippedSteps = 0;
  if (state0 && resumeFrom) {
    optimizer.loadState(state0.optimizerT, await readOptimizerTensors(resumeFrom.path), join(resumeFrom.path, 'optimizer.safetensors'));
    rng = Rng.fromState(state0.rng);
    step = state0.step;
    consecutiveSkips = state0.consecutiveSkips;
    skippedSteps = state0.skippedSteps;
    log.info('resumed', { checkpoint: resumeFrom.path, step });
  }

  // --- artifacts ---
  const metricsPath = join(runDir, 'metrics.jsonl');
  if (resumeFrom) truncateMetricsJsonl(metricsPath, step);
  const sink: MetricsSink = fanOutMetricsSinks([new JsonlMetricsSink(metricsPath), new TensorBoardMetricsSink(runDir)]);
  const progress = options.progress === false ? null : new ProgressReporter({ logger: log });
  const cb = options.callbacks ?? {};

  const checkpoint = async (): Promise<void> => {
    const state: TrainerState = {
      version: 1,
      stage: c.stage,
      step,
      totalSteps,
      optimizerT: optimizer.t,
      scheduler: { ...schedule },
      rng: rng.getState(),
      dataPosition: task.position(),
      consecutiveSkips,
      skippedSteps,
      extra: {},
    };
    const path = await saveCheckpoint(runDir, { model, loraExtraTrainables: loraExtra, optimizer: optimizer.stateTensors(), state });
    await pruneCheckpoints(runDir, c.train.save_total_limit);
    cb.onCheckpoint?.({ step, path });
    log.info('checkpoint', { step, path });
  };
  const evaluate = async (): Promise<Record<string, number> | null> => {
    const m = await task.evaluate();
    if (m) {
      sink.write(step, m);
      cb.onEval?.({ step, metrics: m });
    }
    return m;
  };

  let lastMetrics: Record<string, number> = {};
  let lastEval: Record<string, number> | null = null;
  let status: RunResult['status'] = 'completed';
  let lastSavedStep = resumeFrom ? step : -1;
  try {
    while (step < totalSteps) {
      if (options.signal?.aborted) {
        status = 'cancelled';
        log.info('cancelled at a step boundary', { step, lastCheckpoint: lastSavedStep });
        break;
      }
      const t0 = Date.now();
      const lr = learningRateAt(step, schedule);
      step++;
      let acc: tf.Tensor[] | null = null;
      let lossSum = 0;
      let tokens = 0;
      const stageMetrics = new Map<string, number>();
      for (let k = 0; k < K; k++) {
        const batch = await task.next();
        const dropoutSeed = rng.nextInt(0x7fffffff);
        let metrics: Record<string, number> = {};
        let batchTokens = 0;
        const { value, grads } = tf.variableGrads(() => {
          const out = task.loss(batch, dropoutSeed);
          metrics = out.metrics;
          batchTokens = out.tokens;
          const loss = options.transformLoss ? options.transformLoss(out.loss, { step, microStep: k }) : out.loss;
          return tf.div(loss, K) as tf.Scalar;
        }, vars);
        lossSum += value.dataSync()[0] * K;
        value.dispose();
        tokens += batchTokens;
        for (const [name, v] of Object.entries(metrics)) stageMetrics.set(name, (stageMetrics.get(name) ?? 0) + v / K);
        const list = params.map((p) => {
          const g = grads[p.variable.name];
          if (!g) throw new Error(`no gradient for ${p.name}`);
          return g;
        });
        if (acc === null) acc = list;
        else {
          const sum: tf.Tensor[] = acc.map((a, i) => tf.add(a, list[i]));
          tf.dispose([...acc, ...list]);
          acc = sum;
        }
      }
      const loss = lossSum / K;
      const { grads, norm } = clipGradNorm(acc!, c.train.max_grad_norm);
      const skipped = !Number.isFinite(loss) || !Number.isFinite(norm);
      if (skipped) {
        consecutiveSkips++;
        skippedSteps++;
        log.warn('non-finite loss or gradient: step skipped', { step, loss, gradNorm: norm, consecutiveSkips });
        if (consecutiveSkips > c.train.max_consecutive_skips) {
          tf.dispose(grads);
          throw new TrainingError(
            `step ${step}: ${consecutiveSkips} steps in a row had a non-finite loss or gradient (loss ${loss}, grad norm ${norm}); more than train.max_consecutive_skips = ${c.train.max_consecutive_skips}. Lower train.learning_rate or check the data.`,
          );
        }
      } else {
        consecutiveSkips = 0;
        optimizer.apply(grads, lr);
      }
      tf.dispose(grads);
      const seconds = Math.max(1e-6, (Date.now() - t0) / 1000);
      const metrics: Record<string, number> = {
        'train/loss': loss,
        'train/grad_norm': norm,
        'train/learning_rate': lr,
        'train/epoch': task.epoch,
        'train/skipped_steps': skippedSteps,
        ...Object.fromEntries(stageMetrics),
      };
      lastMetrics = metrics;
      const logStep = step % c.train.logging_steps === 0 || step === totalSteps || step === 1;
      if (logStep) sink.write(step, metrics);
      cb.onStep?.({ step, totalSteps, metrics, skipped });
      progress?.update({ step, totalSteps, tokensPerSecond: tokens / seconds, metrics: lastEval ? { ...metrics, ...lastEval } : metrics, logStep });
      if (c.train.eval_steps !== null && step % c.train.eval_steps === 0 && step !== totalSteps) lastEval = (await evaluate()) ?? lastEval;
      if (c.train.save_steps !== null && step % c.train.save_steps === 0 && step !== totalSteps) {
        await checkpoint();
        lastSavedStep = step;
      }
    }
    progress?.finish();
    let modelDir: string | null = null;
    let adapterDir: string | null = null;
    if (status === 'completed') {
      lastEval = (await evaluate()) ?? lastEval;
      if (lastSavedStep !== step) await checkpoint();
      if (model.lora) {
        adapterDir = join(runDir, 'adapter');
        await saveLoraAdapter(model, adapterDir, { baseModel: resolve(c.model) });
        mergeLora(model);
      }
      modelDir = join(runDir, 'model');
      await saveModel(model, modelDir);
    }
    sink.close();
    writeRunReport(runDir, {
      title: `${c.stage} run ${runId}`,
      summary: {
        run: runId,
        stage: c.stage,
        status,
        steps: `${step} / ${totalSteps}`,
        'skipped steps': skippedSteps,
        model: c.model,
        ...(lastEval ? Object.fromEntries(Object.entries(lastEval).map(([k, v]) => [`final ${k}`, v])) : {}),
      },
      config: resolved,
    });
    return { runId, runDir, status, step, totalSteps, skippedSteps, lastMetrics, lastEval, modelDir, adapterDir };
  } catch (e) {
    sink.close();
    throw e;
  } finally {
    optimizer.dispose();
    task.dispose();
    model.dispose();
    await Promise.all(openFiles.map((f) => f.close()));
  }
}
