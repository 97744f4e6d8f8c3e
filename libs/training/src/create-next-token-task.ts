/**
 * Causal-LM and SFT training: next-token cross-entropy under the batch's
 * label mask (every token of {"text"} data; assistant turns or the completion
 * only for conversations / prompt-completion data, as the data layer masks
 * them). Packed rows use the batch's positionIds, which restart at 0 for each
 * packed example, and its segmentIds, so that each example attends only to its
 * own earlier tokens (block-diagonal causal attention): a packed example's loss
 * is the loss it would have alone in a row.
 */
import * as tf from '@tensorflow/tfjs-core';
import { sftLoss } from '@posttrain/algorithms';
import type { SftBatch } from '@posttrain/data';
import { createSftLoader } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { forwardHidden, lmLogits } from '@posttrain/model';
import type { MicroBatchLoss, StageTask, StageTaskOptions } from './stage-task';
import { loaderTask, toUint8, tidyLossOutput } from './stage-task';

/** SFT loss of one batch (differentiable). Metrics: loss/sft, sft/num_tokens, sft/mean_token_accuracy. */
export function nextTokenBatchLoss(model: LlamaModel, batch: SftBatch, dropoutSeed?: number): MicroBatchLoss {
  const { batchSize: B, seqLen: T } = batch;
  const V = model.config.vocabSize;
  const tokens = { ids: batch.inputIds, batch: B, length: T, mask: toUint8(batch.attentionMask), positions: batch.positionIds, segmentIds: batch.segmentIds };
  const labels = tf.tensor2d(batch.labels, [B, T], 'int32');
  const labelMask = tf.tensor2d(Float32Array.from(batch.labelMask), [B, T]);
  try {
    const out = tidyLossOutput(() => {
      const { hidden } = forwardHidden(model, tokens, { dropoutSeed });
      const logits = tf.reshape(lmLogits(model, hidden), [B, T, V]) as tf.Tensor3D; // (B*T, V) -> (B, T, V)
      return sftLoss({ logits, labels, lossMask: labelMask });
    });
    let real = 0;
    for (const m of batch.attentionMask) real += m;
    return { loss: out.loss, metrics: { ...out.metrics }, tokens: real };
  } finally {
    tf.dispose([labels, labelMask]);
  }
}

export function createNextTokenTask(options: StageTaskOptions): StageTask<SftBatch> {
  return loaderTask<SftBatch>(options, {
    createLoader: (source, config, position) => createSftLoader(source, options.tokenizer, config, position),
    loss: (batch, seed) => nextTokenBatchLoss(options.model, batch, seed),
    evalLoss: (batch) => nextTokenBatchLoss(options.model, batch),
    // Token-weighted: the eval loss is the mean NLL over every counted token of the split.
    evalContribution: ({ metrics }) => {
      const n = metrics['sft/num_tokens'];
      return n > 0 ? { metrics: { loss: metrics['loss/sft'], mean_token_accuracy: metrics['sft/mean_token_accuracy'] }, weight: n } : null;
    },
  });
}
