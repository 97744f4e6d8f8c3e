/**
 * Reward-model training: the scalar head scores chosen and rejected
 * sequences (at each row's last real token) in one forward pass of 2B rows,
 * and the Bradley-Terry loss -log sigma(r_c - r_r - margin) (+ centering)
 * trains it (TRL's RewardTrainer).
 */
import * as tf from '@tensorflow/tfjs-core';
import { bradleyTerryLoss } from '@posttrain/algorithms';
import type { DataConfig, DataPosition, PreferenceBatch, RecordSource, TokenizerLike } from '@posttrain/data';
import { createPreferenceLoader } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { sequenceScores } from '@posttrain/model';
import type { MicroBatchLoss, StageTask } from './stage-task';
import { MetricMeans, toRows, tidyLossOutput } from './stage-task';

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

export function rewardBatchLoss(model: LlamaModel, batch: PreferenceBatch, o: RewardLossOptions, dropoutSeed?: number): MicroBatchLoss {
  const B = batch.batchSize;
  const rows = stackPreferenceRows(batch);
  const out = tidyLossOutput(() => {
    const scores = sequenceScores(model, rows, { dropoutSeed }); // (2B)
    const chosenRewards = tf.slice(scores, [0], [B]) as tf.Tensor1D;
    const rejectedRewards = tf.slice(scores, [B], [B]) as tf.Tensor1D;
    return bradleyTerryLoss({
      chosenRewards,
      rejectedRewards,
      margin: o.margin === 0 ? undefined : o.margin,
      centeringCoefficient: o.centerRewardsCoefficient ?? 0,
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

export interface RewardTaskOptions extends RewardLossOptions {
  model: LlamaModel;
  tokenizer: TokenizerLike;
  train: RecordSource;
  eval: RecordSource | null;
  trainData: DataConfig;
  evalData: DataConfig;
  position?: DataPosition;
}

export function createRewardTask(o: RewardTaskOptions): StageTask<PreferenceBatch> {
  const loader = createPreferenceLoader(o.train, o.tokenizer, o.trainData, o.position);
  return {
    next: () => loader.next(),
    loss: (batch, seed) => rewardBatchLoss(o.model, batch, o, seed),
    position: () => loader.position(),
    get epoch() {
      return loader.currentEpoch;
    },
    async countEpochBatches() {
      const dry = createPreferenceLoader(o.train, o.tokenizer, { ...o.trainData });
      let n = 0;
      for await (const _ of dry.epochBatches()) n++;
      return n;
    },
    async evaluate() {
      if (o.eval === null) return null;
      const evalLoader = createPreferenceLoader(o.eval, o.tokenizer, o.evalData);
      const means = new MetricMeans(); // pair-weighted: accuracy is the share of all eval pairs ranked right
      for await (const batch of evalLoader.epochBatches()) {
        const out = rewardBatchLoss(o.model, batch, o);
        out.loss.dispose();
        const { 'loss/reward': loss, ...rest } = out.metrics;
        means.add({ loss, ...rest }, batch.batchSize);
      }
      return means.means('eval/');
    },
    dispose: () => undefined,
  };
}
