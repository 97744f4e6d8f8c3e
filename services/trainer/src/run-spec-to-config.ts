import { DatasetFormat, DpoLossType, LrSchedule, type RunSpec } from '@posttrain/proto';
import { invalidArgument } from '@posttrain/rpc';
import { parseRunConfig, RunConfigError, type RunConfig } from '@posttrain/training';

/** Stages this trainer runs in-process. */
export const OFFLINE_STAGES = ['sft', 'rewardModel', 'dpo'] as const;

const LR: Record<number, string | undefined> = { [LrSchedule.UNSPECIFIED]: undefined, [LrSchedule.CONSTANT]: 'constant', [LrSchedule.LINEAR]: 'linear', [LrSchedule.COSINE]: 'cosine' };
const DPO_LOSS: Record<number, string | undefined> = { [DpoLossType.UNSPECIFIED]: undefined, [DpoLossType.SIGMOID]: 'sigmoid', [DpoLossType.IPO]: 'ipo', [DpoLossType.HINGE]: 'hinge', [DpoLossType.ROBUST]: 'robust' };

/** Config keys back to the RunSpec field paths a gRPC caller wrote. */
const FIELD_OF_KEY: [RegExp, string][] = [
  [/^train\.max_steps/, 'spec.max_steps'],
  [/^train\.epochs/, 'spec.max_epochs'],
  [/^train\.batch_size/, 'spec.batch_size'],
  [/^train\.gradient_accumulation_steps/, 'spec.grad_accumulation_steps'],
  [/^train\.learning_rate/, 'spec.optimizer.learning_rate'],
  [/^train\.(weight_decay|max_grad_norm|warmup_steps)/, 'spec.optimizer'],
  [/^train\.adam_beta1/, 'spec.optimizer.beta1'],
  [/^train\.adam_beta2/, 'spec.optimizer.beta2'],
  [/^train\.adam_epsilon/, 'spec.optimizer.epsilon'],
  [/^dataset\./, 'spec.dataset'],
  [/^lora\./, 'spec.lora'],
  [/^sft\./, 'spec.sft'],
  [/^rm\./, 'spec.reward_model'],
  [/^dpo\./, 'spec.dpo'],
];

/** Proto3 keeps enum numbers it does not know; a value outside the .proto's list is refused, not read as the default. */
function knownEnum(e: Record<number, string>, value: number, field: string): void {
  if (typeof e[value] !== 'string' || value < 0) throw invalidArgument(field, `got ${value}, expected one of ${Object.keys(e).filter((k) => /^\d+$/.test(k) && Number(k) >= 0).join(', ')}`);
}

function positive(v: number): number | undefined {
  return v > 0 ? v : undefined;
}

/**
 * A RunSpec of an offline stage as the run config libs/training validates.
 * Proto3 zeros mean "default" as the .proto comments say; everything is then
 * checked once, by parseRunConfig, and its errors come back as
 * INVALID_ARGUMENT naming the RunSpec field.
 */
export function runSpecToConfig(spec: RunSpec, outputDir: string, runId: string): RunConfig {
  const stage = spec.stage;
  if (!stage) throw invalidArgument('spec.stage', 'not set, expected one of sft, reward_model, dpo, ppo, grpo');
  const ds = spec.dataset;
  if (!ds || ds.paths.length === 0) throw invalidArgument('spec.dataset.paths', 'empty, expected at least one JSONL file');
  if (ds.paths.length > 1) throw invalidArgument('spec.dataset.paths', `got ${ds.paths.length} files; this trainer reads one training file per run (concatenate them first)`);
  if (ds.evalPaths.length > 1) throw invalidArgument('spec.dataset.eval_paths', `got ${ds.evalPaths.length} files, expected at most one`);
  if (ds.maxSamples !== 0) throw invalidArgument('spec.dataset.max_samples', `got ${ds.maxSamples}; limiting the sample count is not supported yet, expected 0`);
  if (!Number.isInteger(spec.maxEpochs)) throw invalidArgument('spec.max_epochs', `got ${spec.maxEpochs}, expected a whole number of epochs`);
  const opt = spec.optimizer;
  knownEnum(DatasetFormat, ds.format, 'spec.dataset.format');
  if (opt) knownEnum(LrSchedule, opt.schedule, 'spec.optimizer.schedule');
  if (stage.$case === 'dpo') knownEnum(DpoLossType, stage.value.lossType, 'spec.dpo.loss_type');
  if (opt && opt.minLearningRate !== 0) throw invalidArgument('spec.optimizer.min_learning_rate', `got ${opt.minLearningRate}; cosine decays to 0 here, expected 0`);
  const format = ds.format === DatasetFormat.PROMPT_COMPLETION ? 'prompt-completion' : ds.format === DatasetFormat.PREFERENCE ? 'preference' : ds.format === DatasetFormat.LANGUAGE_MODELING ? 'language-modeling' : ds.format === DatasetFormat.PROMPT_ONLY ? 'prompt-only' : null;
  const f = ds.fields;
  const raw: Record<string, unknown> = {
    stage: stage.$case === 'rewardModel' ? 'rm' : stage.$case,
    model: spec.baseModelDir,
    output_dir: outputDir,
    run_id: runId,
    seed: spec.seed,
    resume: spec.resume,
    dataset: {
      train: ds.paths[0],
      eval: ds.evalPaths[0] ?? null,
      eval_fraction: ds.evalFraction,
      format,
      style: ds.format === DatasetFormat.CONVERSATIONAL ? 'conversational' : null,
      fields: { text: f?.text || null, messages: f?.messages || null, prompt: f?.prompt || null, completion: f?.completion || null, chosen: f?.chosen || null, rejected: f?.rejected || null },
    },
    train: {
      max_steps: positive(spec.maxSteps) ?? null,
      epochs: positive(spec.maxEpochs) ?? 1,
      batch_size: spec.batchSize,
      gradient_accumulation_steps: positive(spec.gradAccumulationSteps) ?? 1,
      ...(opt ? { learning_rate: opt.learningRate, weight_decay: opt.weightDecay, warmup_steps: opt.warmupSteps, max_grad_norm: positive(opt.maxGradNorm) ?? null } : {}),
      ...(opt && LR[opt.schedule] ? { lr_scheduler: LR[opt.schedule] } : {}),
      ...(opt?.beta1 !== undefined ? { adam_beta1: opt.beta1 } : {}),
      ...(opt?.beta2 !== undefined ? { adam_beta2: opt.beta2 } : {}),
      ...(opt?.epsilon !== undefined ? { adam_epsilon: opt.epsilon } : {}),
      logging_steps: positive(spec.logEverySteps) ?? 1,
      eval_steps: positive(spec.evalEverySteps) ?? null,
      save_steps: positive(spec.checkpointEverySteps) ?? null,
      save_total_limit: positive(spec.keepCheckpoints) ?? null,
    },
    lora: spec.lora ? { r: spec.lora.rank, alpha: spec.lora.alpha, dropout: spec.lora.dropout, ...(spec.lora.targetModules.length ? { target_modules: spec.lora.targetModules } : {}) } : null,
  };
  switch (stage.$case) {
    case 'sft':
      raw.sft = { ...(stage.value.maxLength ? { max_length: stage.value.maxLength } : {}), packing: stage.value.packing, assistant_only_loss: stage.value.assistantOnlyLoss, completion_only_loss: stage.value.completionOnlyLoss };
      break;
    case 'rewardModel':
      raw.rm = { ...(stage.value.maxLength ? { max_length: stage.value.maxLength } : {}), margin: stage.value.margin, center_rewards_coefficient: positive(stage.value.centerRewardsCoefficient) ?? null };
      break;
    case 'dpo': {
      const d = stage.value;
      if (d.reference?.$case === 'precomputedReferencePath') throw invalidArgument('spec.dpo.precomputed_reference_path', 'not supported yet: use reference_address (a ReferenceModel service) or leave it unset for a frozen local copy of base_model_dir');
      if (d.maxPromptLength) throw invalidArgument('spec.dpo.max_prompt_length', `got ${d.maxPromptLength}; only max_length is supported, expected 0`);
      raw.dpo = { ...(d.maxLength ? { max_length: d.maxLength } : {}), ...(d.beta ? { beta: d.beta } : {}), ...(DPO_LOSS[d.lossType] ? { loss_type: DPO_LOSS[d.lossType] } : {}), label_smoothing: d.labelSmoothing };
      break;
    }
    default:
      throw new Error(`runSpecToConfig: ${stage.$case} is not an offline stage`);
  }
  try {
    return parseRunConfig(raw, 'spec');
  } catch (err) {
    if (!(err instanceof RunConfigError)) throw err;
    const key = /^spec: ([a-z_.\d[\]]+)/.exec(err.message)?.[1] ?? '';
    const field = FIELD_OF_KEY.find(([re]) => re.test(key))?.[1] ?? 'spec';
    throw invalidArgument(field, err.message.replace(/^spec: /, ''));
  }
}
