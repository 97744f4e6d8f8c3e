/**
 * @posttrain/training: the offline training stages in one process (causal
 * LM on {"text"} data, SFT, reward model, DPO): the run config of every stage
 * (PPO and GRPO too; libs/rl resolves theirs), AdamW
 * with warmup schedules, gradient accumulation and global-norm clipping,
 * NaN/inf step skipping, LoRA or full fine-tuning, atomic checkpoints that
 * resume step for step, and run artifacts (config.json, metrics.jsonl,
 * TensorBoard events, report.html).
 *
 * @example
 * ```ts
 * import { loadRunConfig, runStage } from '@posttrain/training';
 * const config = await loadRunConfig('sft.yaml', ['train.learning_rate=3e-4']);
 * const ac = new AbortController();
 * const result = await runStage(config, {
 *   signal: ac.signal,
 *   callbacks: { onStep: (e) => console.log(e.step, e.metrics['train/loss']) },
 * });
 * console.log(result.status, result.runDir, result.lastEval);
 * ```
 */
export { parseRunConfig, loadRunConfig } from './run-config';
export { applyConfigOverrides } from './config-overrides';
export { RUN_CONFIG_SCHEMA } from './run-config-schema';
export {
  RunConfigError,
  STAGES,
  OFFLINE_STAGES,
  RL_STAGES,
  LR_SCHEDULERS,
  DATA_FORMATS,
  DPO_LOSS_TYPES,
  KL_ESTIMATORS,
  KL_PLACEMENTS,
  STALE_ROLLOUT_POLICIES,
  ADVANTAGE_ESTIMATORS,
  GRPO_LOSS_TYPES,
  GRPO_LOSS_AGGREGATIONS,
  RUN_ID_PATTERN,
  RUN_ID_RULE,
} from './run-config-types';
export type {
  RunConfig,
  Stage,
  OfflineStage,
  RlStage,
  LrSchedulerType,
  DataFormat,
  DatasetConfig,
  TrainConfig,
  LoraConfig,
  LmStageConfig,
  SftStageConfig,
  RmStageConfig,
  DpoStageConfig,
  DpoReferenceConfig,
  PpoStageConfig,
  GrpoStageConfig,
  RlSharedConfig,
  RlServicesConfig,
  KlPlacement,
  StaleRolloutPolicy,
  AdvantageEstimatorName,
  GrpoLossType,
} from './run-config-types';
export { runStage } from './run-stage';
export type { RunStageOptions, RunResult } from './run-stage';
export { RunHarness, SkipCounter, TrainingError, timestampId } from './run-harness';
export type { RunHarnessSettings, RunCallbacks, StepEvent, StepOutcome, StageLoop } from './run-harness';
export { MAX_GENERATION_SAMPLES, MAX_SAMPLE_CHARS, boundGenerationSamples, spreadIndices, truncateSampleText } from './generation-samples';
export type { GenerationSample } from './generation-samples';
export { AdamW } from './adamw-optimizer';
export type { AdamWOptions, NamedVariable, OptimizerTensors } from './adamw-optimizer';
export { learningRateAt, warmupStepsFor } from './learning-rate-at';
export type { LrSchedule } from './learning-rate-at';
export { clipGradNorm } from './clip-grad-norm';
export type { ClippedGradients } from './clip-grad-norm';
export { saveCheckpoint, listCheckpoints, pruneCheckpoints, readTrainerState, readOptimizerTensors, checkpointsDir } from './train-checkpoint';
export type { TrainerState, CheckpointContents, CheckpointStage } from './train-checkpoint';
export { nextTokenBatchLoss, createNextTokenTask } from './create-next-token-task';
export { rewardBatchLoss, createRewardTask, stackPreferenceRows } from './create-reward-task';
export { dpoBatchLoss, createDpoTask, computeReferenceCache } from './create-dpo-task';
export type { ReferenceLogProbsFn, ReferenceCache } from './create-dpo-task';
export type { StageTask, MicroBatchLoss } from './stage-task';
export { ProgressReporter } from './progress-reporter';
export type { ProgressUpdate, ProgressReporterOptions } from './progress-reporter';
