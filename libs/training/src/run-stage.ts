/**
 * The stage runner: one offline training run (causal LM, SFT, reward model,
 * DPO) in this process, from a validated RunConfig to runs/<id>/. The run
 * harness (run-harness.ts) owns the run directory, resume, metrics, skips,
 * checkpoints and the report; this file is the optimizer step.
 *
 * One optimizer step = gradient_accumulation_steps micro-batches:
 *   grads = sum_k d(loss_k / K)/d(params)   (tf.variableGrads per micro-batch)
 *   norm = ||grads||_2 (global); non-finite loss or norm -> skip the step (logged; too many in a row -> error)
 *   clip to max_grad_norm; AdamW with lr = schedule(step)
 * Steps are numbered from 1; the schedule sees the 0-based index (as HF's LambdaLR).
 * Between steps the harness checks the AbortSignal (cancel at a step boundary,
 * keeping the last checkpoint); the runner evaluates every eval_steps and
 * checkpoints every save_steps (and both at the end).
 *
 * Everything that shapes a step is either in the checkpoint (weights, AdamW
 * moments and t, data position, the RNG that draws dropout seeds, skip
 * counters) or a function of the step number (learning rate), so a resumed
 * run reproduces the uninterrupted one step for step.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { getBackendInfo, initBackend } from '@posttrain/backend';
import type { LlamaModel, ModelConfig } from '@posttrain/model';
import { applyLora, loadLoraAdapter, loadModel, mergeLora, saveLoraAdapter, saveModel, withScoreHead } from '@posttrain/model';
import { Rng } from '@posttrain/random';
import type { Logger } from '@posttrain/telemetry';
import { createLogger } from '@posttrain/telemetry';
import { loadTokenizer } from '@posttrain/tokenizer';
import { AdamW } from './adamw-optimizer';
import { clipGradNorm } from './clip-grad-norm';
import type { ReferenceLogProbsFn } from './create-dpo-task';
import { createDpoTask } from './create-dpo-task';
import { createRewardTask } from './create-reward-task';
import { createNextTokenTask } from './create-next-token-task';
import { learningRateAt, warmupStepsFor } from './learning-rate-at';
import type { LrSchedule } from './learning-rate-at';
import { ProgressReporter } from './progress-reporter';
import { loadOrComputeReferenceCaches } from './reference-cache-file';
import type { RunConfig } from './run-config';
import { RunConfigError } from './run-config';
import type { RunCallbacks } from './run-harness';
import { RunHarness } from './run-harness';
import type { StageData } from './stage-data';
import { openStageData } from './stage-data';
import type { StageTask } from './stage-task';
import { readOptimizerTensors } from './train-checkpoint';

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
  transformLoss?: (loss: tf.Scalar, context: { step: number; microStep: number }) => tf.Scalar;
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

/** The model a stage trains: from the checkpoint (full fine-tuning) or the base, a score head for rm, LoRA adapters. */
async function loadStageModel(config: RunConfig, resumeFrom: string | null): Promise<LlamaModel> {
  const loraRun = config.lora !== null;
  let model = await loadModel(!loraRun && resumeFrom ? join(resumeFrom, 'model') : config.model);
  if (config.stage === 'rm' && !model.heads.score) {
    const rewardModel = withScoreHead(model, { seed: config.seed });
    model.dispose();
    model = rewardModel;
  }
  if (config.stage !== 'rm' && !model.heads.lm) throw new RunConfigError(`model: ${config.model} has no LM head (a sequence-classification model); stage ${config.stage} needs one`);
  if (config.lora) {
    // The adapter holds the modules_to_save heads (a reward model's score.weight) too.
    if (resumeFrom) await loadLoraAdapter(model, join(resumeFrom, 'adapter'));
    else applyLora(model, { r: config.lora.r, alpha: config.lora.alpha, dropout: config.lora.dropout, targetModules: config.lora.target_modules }, { seed: config.seed });
  }
  return model;
}

async function createStageTask(config: RunConfig, model: LlamaModel, data: StageData, harness: RunHarness, options: RunStageOptions, logger: Logger): Promise<StageTask<unknown>> {
  const tokenizer = await loadTokenizer(config.model);
  const common = { model, tokenizer, train: data.train, eval: data.eval, trainData: data.trainData, evalData: data.evalData, position: harness.resumedState?.dataPosition };
  if (config.stage === 'lm' || config.stage === 'sft') return createNextTokenTask(common) as StageTask<unknown>;
  if (config.stage === 'rm') return createRewardTask({ ...common, margin: config.rm!.margin, centerRewardsCoefficient: config.rm!.center_rewards_coefficient }) as StageTask<unknown>;
  const dpo = config.dpo!;
  const caches = await loadOrComputeReferenceCaches({
    runDir: harness.runDir,
    train: data.train,
    eval: data.eval,
    tokenizer,
    data: data.evalData,
    batchSize: dpo.reference.batch_size,
    referenceModel: dpo.reference.model ?? config.model,
    reference: options.referenceLogProbs,
    logger,
  });
  return createDpoTask({ ...common, trainCache: caches.train, evalCache: caches.eval, beta: dpo.beta, lossType: dpo.loss_type, labelSmoothing: dpo.label_smoothing, rpoAlpha: dpo.rpo_alpha ?? 0 }) as StageTask<unknown>;
}

/**
 * The score statistics a trained reward model records in its config.json:
 * those of the final evaluation (eval/reward_mean, eval/reward_std), switched
 * on by rm.normalize_reward. Without an eval split none are recorded (any the
 * starting model carried are dropped: they described other weights).
 */
function rewardModelConfig(config: RunConfig, lastEval: Record<string, number> | null, logger: Logger): Pick<ModelConfig, 'rewardStats' | 'normalizeReward'> {
  const mean = lastEval?.['eval/reward_mean'];
  const std = lastEval?.['eval/reward_std'];
  if (mean === undefined || std === undefined || !Number.isFinite(mean) || !(std > 0)) return { rewardStats: null, normalizeReward: false };
  const normalizeReward = config.rm!.normalize_reward;
  logger.info('reward model score statistics recorded in config.json', { mean, std, normalizeReward });
  return { rewardStats: { mean, std }, normalizeReward };
}

/**
 * Runs a stage to completion (or cancellation). Writes <output_dir>/<run_id>/: config.json,
 * metrics.jsonl, TensorBoard events, checkpoints/step-N, model/ (and adapter/), report.html.
 */
export async function runStage(config: RunConfig, options: RunStageOptions = {}): Promise<RunResult> {
  const logger = options.logger ?? createLogger({ service: 'trainer', fields: { stage: config.stage } });
  if (getBackendInfo() === null) await initBackend(config.backend === null ? { logger } : { backend: config.backend, logger });
  const harness = await RunHarness.open({
    stage: config.stage,
    runId: config.run_id,
    outputDir: config.output_dir,
    resume: config.resume,
    configSnapshot: (runId) => ({ ...config, run_id: runId }),
    keepCheckpoints: config.train.save_total_limit,
    logger,
    callbacks: options.callbacks,
    signal: options.signal,
  });
  if (!existsSync(join(config.model, 'config.json'))) throw new RunConfigError(`model: ${JSON.stringify(config.model)} is not a model directory (no config.json)`);

  const data = await openStageData(config);
  const model = await loadStageModel(config, harness.resumeFrom);
  const params = model.namedTrainables();
  const variables = params.map((p) => p.variable);
  const task = await createStageTask(config, model, data, harness, options, logger);

  // --- schedule and optimizer ---
  const accumulation = config.train.gradient_accumulation_steps;
  const resumed = harness.resumedState;
  const totalSteps = resumed?.totalSteps ?? config.train.max_steps ?? config.train.epochs * Math.max(1, Math.ceil((await task.countEpochBatches()) / accumulation));
  const schedule: LrSchedule = { type: config.train.lr_scheduler, baseLr: config.train.learning_rate, warmupSteps: warmupStepsFor(config.train.warmup_steps, config.train.warmup_ratio, totalSteps), totalSteps };
  const optimizer = new AdamW(params, { beta1: config.train.adam_beta1, beta2: config.train.adam_beta2, epsilon: config.train.adam_epsilon, weightDecay: config.train.weight_decay });
  let rng = new Rng(config.seed).fork('dropout');
  const skips = harness.skipCounter(config.train.max_consecutive_skips);
  if (resumed && harness.resumeFrom) {
    optimizer.loadState(resumed.optimizerT, await readOptimizerTensors(harness.resumeFrom), join(harness.resumeFrom, 'optimizer.safetensors'));
    rng = Rng.fromState(resumed.rng);
    logger.info('resumed', { checkpoint: harness.resumeFrom, step: resumed.step });
  }
  const progress = options.progress === false ? null : new ProgressReporter({ logger });

  const checkpoint = async (step: number): Promise<void> => {
    await harness.saveCheckpoint({
      models: [{ dir: model.lora ? 'adapter' : 'model', model }],
      optimizers: [{ file: 'optimizer.safetensors', tensors: optimizer.stateTensors() }],
      state: {
        version: 1,
        stage: config.stage,
        step,
        totalSteps,
        optimizerT: optimizer.t,
        scheduler: { ...schedule },
        rng: rng.getState(),
        dataPosition: task.position(),
        consecutiveSkips: skips.consecutive,
        skippedSteps: skips.total,
        extra: {},
      },
    });
  };
  let lastEval: Record<string, number> | null = null;
  const evaluate = async (step: number): Promise<void> => {
    const metrics = await task.evaluate();
    if (!metrics) return;
    harness.metrics.write(step, metrics);
    options.callbacks?.onEval?.({ step, metrics });
    lastEval = metrics;
  };

  /** K micro-batches, their gradients summed, clipped, and one AdamW update unless non-finite. */
  const trainStep = async (step: number) => {
    const started = Date.now();
    const lr = learningRateAt(step - 1, schedule);
    let summed: tf.Tensor[] | null = null;
    let lossSum = 0;
    let tokens = 0;
    const stageMetrics = new Map<string, number>();
    for (let microStep = 0; microStep < accumulation; microStep++) {
      const batch = await task.next();
      const dropoutSeed = rng.nextInt(0x7fffffff);
      let metrics: Record<string, number> = {};
      let batchTokens = 0;
      const { value, grads } = tf.variableGrads(() => {
        const out = task.loss(batch, dropoutSeed);
        metrics = out.metrics;
        batchTokens = out.tokens;
        const loss = options.transformLoss ? options.transformLoss(out.loss, { step, microStep }) : out.loss;
        return tf.div(loss, accumulation) as tf.Scalar;
      }, variables);
      lossSum += value.dataSync()[0] * accumulation;
      value.dispose();
      tokens += batchTokens;
      for (const [name, v] of Object.entries(metrics)) stageMetrics.set(name, (stageMetrics.get(name) ?? 0) + v / accumulation);
      const list = params.map((p) => {
        const grad = grads[p.variable.name];
        if (!grad) throw new Error(`no gradient for ${p.name}`);
        return grad;
      });
      if (summed === null) summed = list;
      else {
        const sum: tf.Tensor[] = summed.map((a, i) => tf.add(a, list[i]));
        tf.dispose([...summed, ...list]);
        summed = sum;
      }
    }
    const loss = lossSum / accumulation;
    const { grads, norm } = clipGradNorm(summed!, config.train.max_grad_norm);
    const skipped = !Number.isFinite(loss) || !Number.isFinite(norm);
    try {
      skips.record(skipped, (inARow) =>
        `step ${step}: ${inARow} steps in a row had a non-finite loss or gradient (loss ${loss}, grad norm ${norm}); more than train.max_consecutive_skips = ${config.train.max_consecutive_skips}. Lower train.learning_rate or check the data.`,
      );
      if (skipped) logger.warn('non-finite loss or gradient: step skipped', { step, loss, gradNorm: norm, consecutiveSkips: skips.consecutive });
      else optimizer.apply(grads, lr);
    } finally {
      tf.dispose(grads);
    }
    const seconds = Math.max(1e-6, (Date.now() - started) / 1000);
    const metrics: Record<string, number> = {
      'train/loss': loss,
      'train/grad_norm': norm,
      'train/learning_rate': lr,
      'train/epoch': task.epoch,
      'train/skipped_steps': skips.total,
      ...Object.fromEntries(stageMetrics),
    };
    return { metrics, skipped, tokensPerSecond: tokens / seconds };
  };

  try {
    let tokensPerSecond = 0;
    const { status, lastMetrics } = await harness.drive({
      totalSteps,
      logEverySteps: config.train.logging_steps,
      checkpointEverySteps: config.train.save_steps,
      runStep: async (step) => {
        const out = await trainStep(step);
        tokensPerSecond = out.tokensPerSecond;
        return out;
      },
      afterStep: async (step, outcome, logStep) => {
        progress?.update({ step, totalSteps, tokensPerSecond, metrics: lastEval ? { ...outcome.metrics, ...lastEval } : outcome.metrics, logStep });
        if (config.train.eval_steps !== null && step % config.train.eval_steps === 0 && step !== totalSteps) await evaluate(step);
      },
      checkpoint,
    });
    progress?.finish();
    const step = harness.step;
    let modelDir: string | null = null;
    let adapterDir: string | null = null;
    if (status === 'completed') {
      await evaluate(step);
      if (harness.unsaved) await checkpoint(step);
      if (model.lora) {
        adapterDir = join(harness.runDir, 'adapter');
        await saveLoraAdapter(model, adapterDir, { baseModel: resolve(config.model) });
        mergeLora(model);
      }
      modelDir = join(harness.runDir, 'model');
      await saveModel(model, modelDir, config.stage === 'rm' ? { config: rewardModelConfig(config, lastEval, logger) } : {});
    }
    const finalEval = lastEval as Record<string, number> | null;
    harness.finish({
      title: `${config.stage} run ${harness.runId}`,
      summary: {
        run: harness.runId,
        stage: config.stage,
        status,
        steps: `${step} / ${totalSteps}`,
        'skipped steps': skips.total,
        model: config.model,
        ...(finalEval ? Object.fromEntries(Object.entries(finalEval).map(([k, v]) => [`final ${k}`, v])) : {}),
      },
    });
    return { runId: harness.runId, runDir: harness.runDir, status, step, totalSteps, skippedSteps: skips.total, lastMetrics, lastEval: finalEval, modelDir, adapterDir };
  } finally {
    harness.close();
    optimizer.dispose();
    task.dispose();
    model.dispose();
    await data.close();
  }
}
