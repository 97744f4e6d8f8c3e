/**
 * Reward-model training: the scalar head scores chosen and rejected
 * sequences (at each row's last real token) in one forward pass of 2B rows,
 * and the Bradley-Terry loss -log sigma(r_c - r_r - margin) (+ centering)
 * trains it (TRL's RewardTrainer).
 *
 * Each evaluation also reports the mean and standard deviation of every
 * score it computed, chosen and rejected together (`eval/reward_mean`,
 * `eval/reward_std`: OpenRLHF's statistics, which the stage runner records in
 * the saved model's config.json for `normalize_reward`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { bradleyTerryLoss } from '@posttrain/algorithms';
import type { PreferenceBatch } from '@posttrain/data';
import { createPreferenceLoader } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { sequenceScores } from '@posttrain/model';
import type { EvalContribution, MicroBatchLoss, StageTask, StageTaskOptions } from './stage-task';
import { loaderTask, toRows, tidyLossOutput } from './stage-task';

/** chosen rows then rejected rows as one [2B, T] token batch. */
export function stackPreferenceRows(batch: PreferenceBatch): { inputIds: number[][]; attentionMask: number[][] } {
  const { batchSize: B, seqLen: T } = batch;
  return {
    inputIds: [...toRows(batch.chosenInputIds, B, T), ...toRows(batch.rejectedInputIds, B, T)],
    attentionMask: [...toRows(batch.chosenAttentionMask, B, T), ...toRows(batch.rejectedAttentionMask, B, T)],
  };
}

export interface RewardLossOptions {
  margin: number;
  centerRewardsCoefficient: number | null;
}

/** `onScores` receives the batch's 2B scores (chosen rows, then rejected rows) as plain numbers. */
export function rewardBatchLoss(model: LlamaModel, batch: PreferenceBatch, options: RewardLossOptions, dropoutSeed?: number, onScores?: (scores: Float32Array) => void): MicroBatchLoss {
  const B = batch.batchSize;
  const rows = stackPreferenceRows(batch);
  const out = tidyLossOutput(() => {
    const scores = sequenceScores(model, rows, { dropoutSeed }); // (2B)
    onScores?.(scores.dataSync() as Float32Array);
    const chosenRewards = tf.slice(scores, [0], [B]) as tf.Tensor1D;
    const rejectedRewards = tf.slice(scores, [B], [B]) as tf.Tensor1D;
    return bradleyTerryLoss({
      chosenRewards,
      rejectedRewards,
      margin: options.margin === 0 ? undefined : options.margin,
      centeringCoefficient: options.centerRewardsCoefficient ?? 0,
    });
  });
  return { loss: out.loss, metrics: { ...out.metrics }, tokens: preferenceBatchTokens(batch) };
}

/** Real (unpadded) tokens of both sides of a preference batch, for throughput. */
export function preferenceBatchTokens(batch: PreferenceBatch): number {
  let tokens = 0;
  for (const m of batch.chosenAttentionMask) tokens += m;
  for (const m of batch.rejectedAttentionMask) tokens += m;
  return tokens;
}

/**
 * The eval contribution of a preference batch: its metrics with `lossKey`
 * (`loss/reward`, `loss/dpo`) renamed `loss`, weighted by pairs, so that an
 * accuracy is the share of all eval pairs ranked right.
 */
export function pairWeightedEval(lossKey: string): (out: MicroBatchLoss, batch: PreferenceBatch) => EvalContribution {
  return (out, batch) => {
    const { [lossKey]: loss, ...rest } = out.metrics;
    return { metrics: { loss, ...rest }, weight: batch.batchSize };
  };
}

export type RewardTaskOptions = StageTaskOptions & RewardLossOptions;

/**
 * Mean and sample standard deviation (n - 1, as torch.std) of scores, the
 * deviation at least 1e-8 (as OpenRLHF clamps it); null for fewer than 2.
 */
export function scoreStats(scores: ArrayLike<number>): { mean: number; std: number } | null {
  const n = scores.length;
  if (n < 2) return null;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += scores[i];
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (scores[i] - mean) ** 2;
  return { mean, std: Math.max(1e-8, Math.sqrt(ss / (n - 1))) };
}

export function createRewardTask(options: RewardTaskOptions): StageTask<PreferenceBatch> {
  let evalScores: number[] = [];
  const task = loaderTask<PreferenceBatch>(options, {
    createLoader: (source, config, position) => createPreferenceLoader(source, options.tokenizer, config, position),
    loss: (batch, seed) => rewardBatchLoss(options.model, batch, options, seed),
    evalLoss: (batch) => rewardBatchLoss(options.model, batch, options, undefined, (scores) => evalScores.push(...scores)),
    evalContribution: pairWeightedEval('loss/reward'),
  });
  const evaluate = task.evaluate.bind(task);
  task.evaluate = async () => {
    evalScores = [];
    const metrics = await evaluate();
    const stats = scoreStats(evalScores);
    evalScores = [];
    return metrics && stats ? { ...metrics, 'eval/reward_mean': stats.mean, 'eval/reward_std': stats.std } : metrics;
  };
  return task;
}
