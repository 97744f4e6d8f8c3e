/**
 * Supervised fine-tuning loss: token cross-entropy on completion (assistant)
 * tokens only, -log p(y_t | y_<t, x) averaged under a loss mask that is 1 on
 * assistant tokens and 0 on system/user/prompt and padding tokens (TRL's
 * SFTTrainer with assistant_only_loss / completion_only_loss; Ouyang et al.
 * 2022, InstructGPT, Sec. 3.5: "SFT" on labeler demonstrations).
 *
 * Two reductions:
 * - 'token-mean': sum over all valid tokens / number of valid tokens
 *   (every token weighs the same; TRL's default);
 * - 'sequence-mean': mean over sequences of each sequence's token-mean (every
 *   example weighs the same, however long). Rows with no valid token are left
 *   out of the mean over sequences.
 */
import * as tf from '@tensorflow/tfjs-core';
import { aggregateLoss } from './aggregate-loss';
import { gatherLogProbs } from './log-probs';
import type { LossOutput } from './loss-output';
import { maskedMean } from './masked-reductions';
import { tidyLoss } from './tidy-loss';
import { assertFloat, assertOneOf, assertRank, assertShape } from './shape-checks';

export type SftReduction = 'token-mean' | 'sequence-mean';
const SFT_REDUCTIONS: readonly SftReduction[] = ['token-mean', 'sequence-mean'];

export type SftMetricName = 'loss/sft' | 'sft/num_tokens';
export type SftLogitsMetricName = SftMetricName | 'sft/mean_token_accuracy';

export interface SftLossFromLogProbsArgs {
  /** [B,T] log p(label_t) under the model (see gatherLogProbs). */
  readonly tokenLogProbs: tf.Tensor2D;
  /** [B,T] 1 on assistant tokens that are trained on, 0 elsewhere. */
  readonly lossMask: tf.Tensor2D;
  /** Default 'token-mean'. */
  readonly reduction?: SftReduction;
}

export interface SftLossArgs {
  /** [B,T,V] logits, aligned with labels (position t predicts labels[t]). */
  readonly logits: tf.Tensor3D;
  /** [B,T] int32 target token ids (the input shifted left by one). */
  readonly labels: tf.Tensor2D;
  /** [B,T] 1 on assistant tokens that are trained on, 0 elsewhere. */
  readonly lossMask: tf.Tensor2D;
  /** Default 'token-mean'. */
  readonly reduction?: SftReduction;
}

function reduce(nll: tf.Tensor2D, lossMask: tf.Tensor2D, reduction: SftReduction): tf.Scalar {
  return aggregateLoss(nll, lossMask, reduction === 'token-mean' ? 'token-mean' : 'seq-mean-token-mean');
}

/** SFT loss from per-token log-probs already gathered. */
export function sftLossFromLogProbs(args: SftLossFromLogProbsArgs): LossOutput<SftMetricName> {
  const fn = 'sftLossFromLogProbs';
  const { tokenLogProbs, lossMask } = args;
  const reduction = args.reduction ?? 'token-mean';
  assertRank(fn, 'tokenLogProbs', tokenLogProbs, 2, '[B,T]');
  assertFloat(fn, 'tokenLogProbs', tokenLogProbs);
  assertShape(fn, 'lossMask', lossMask, tokenLogProbs.shape, 'tokenLogProbs');
  assertOneOf(fn, 'reduction', reduction, SFT_REDUCTIONS);
  return tidyLoss<SftMetricName>(() => {
    const nll = tf.neg(tokenLogProbs) as tf.Tensor2D; // (B,T)
    const loss = reduce(nll, lossMask, reduction);
    return { loss, metrics: { 'loss/sft': loss, 'sft/num_tokens': tf.sum(tf.cast(lossMask, 'float32')) } };
  });
}

/**
 * SFT loss from logits: cross-entropy -log softmax(logits)[label] under the
 * loss mask, plus the share of valid tokens whose argmax is the label.
 */
export function sftLoss(args: SftLossArgs): LossOutput<SftLogitsMetricName> {
  const fn = 'sftLoss';
  const { logits, labels, lossMask } = args;
  const reduction = args.reduction ?? 'token-mean';
  assertRank(fn, 'logits', logits, 3, '[B,T,V]');
  assertFloat(fn, 'logits', logits);
  assertShape(fn, 'labels', labels, logits.shape.slice(0, 2), 'logits[B,T]');
  if (labels.dtype !== 'int32') throw new Error(`${fn}: labels must be int32, got ${labels.dtype}`);
  assertShape(fn, 'lossMask', lossMask, logits.shape.slice(0, 2), 'logits[B,T]');
  assertOneOf(fn, 'reduction', reduction, SFT_REDUCTIONS);
  return tidyLoss<SftLogitsMetricName>(() => {
    const nll = tf.neg(gatherLogProbs(logits, labels)) as tf.Tensor2D; // (B,T)
    const loss = reduce(nll, lossMask, reduction);
    const correct = tf.cast(tf.equal(tf.argMax(logits, -1), labels), 'float32'); // (B,T)
    return {
      loss,
      metrics: {
        'loss/sft': loss,
        'sft/num_tokens': tf.sum(tf.cast(lossMask, 'float32')),
        'sft/mean_token_accuracy': maskedMean(correct, lossMask),
      },
    };
  });
}
