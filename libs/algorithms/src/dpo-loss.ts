/**
 * Direct Preference Optimization and its variants, exactly as TRL's DPOTrainer
 * (dpo_loss) defines them. With sequence log-probs pi_c, pi_r (policy) and
 * ref_c, ref_r (frozen reference) of the chosen / rejected completions:
 *   x = (pi_c - pi_r) - (ref_c - ref_r)
 * - 'sigmoid' (Rafailov et al. 2023, DPO, eq. 7), with label smoothing eps
 *   (cDPO, Mitchell 2023, "A note on DPO with noisy preferences"):
 *     L = -log sigma(beta x) (1 - eps) - log sigma(-beta x) eps
 * - 'robust' (Chowdhury et al. 2024, "Provably Robust DPO", their de-biased loss):
 *     L = (-log sigma(beta x) (1 - eps) + log sigma(-beta x) eps) / (1 - 2 eps)
 * - 'hinge' (Zhao et al. 2023, SLiC-HF calibration loss, eq. 1, on beta x with margin 1):
 *     L = relu(1 - beta x)
 * - 'ipo' (Azar et al. 2023, "A General Theoretical Paradigm...", eq. 17):
 *     L = (x - 1/(2 beta))^2, where IPO is meant for length-AVERAGED log-probs:
 *     pass `sequenceLogProbs(...).mean` for all four inputs (TRL does the same).
 * The loss is the mean over pairs. With `rpoAlpha` (Pang et al. 2024, "Iterative
 * Reasoning Preference Optimization", eq. 1; TRL's rpo_alpha) the mean NLL of
 * the chosen completions' tokens is added, weighted by alpha:
 *     L_RPO = mean(L) + alpha * (-sum of chosen token log-probs / chosen tokens)
 * which keeps the chosen replies likely while the margin grows.
 * Implicit rewards (DPO Sec. 5):
 *   rewards/chosen = beta (pi_c - ref_c), rewards/rejected = beta (pi_r - ref_r),
 *   rewards/margins = their difference, rewards/accuracies = share with chosen > rejected.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LossOutput } from './loss-output';
import { logSigmoid } from './log-sigmoid';
import { assertFloat, assertNumber, assertOneOf, assertRank, assertShape } from './shape-checks';
import { tidyLoss } from './tidy-loss';

export type DpoLossType = 'sigmoid' | 'robust' | 'hinge' | 'ipo';
export const DPO_LOSS_TYPES: readonly DpoLossType[] = ['sigmoid', 'robust', 'hinge', 'ipo'];

export type DpoMetricName =
  | 'loss/dpo'
  | 'rewards/chosen'
  | 'rewards/rejected'
  | 'rewards/margins'
  | 'rewards/accuracies'
  | 'logps/chosen'
  | 'logps/rejected';

export interface DpoLossArgs {
  /** [B] policy sequence log-prob of each chosen completion. */
  readonly policyChosenLogProbs: tf.Tensor1D;
  /** [B] policy sequence log-prob of each rejected completion. */
  readonly policyRejectedLogProbs: tf.Tensor1D;
  /** [B] reference-model sequence log-prob of each chosen completion. */
  readonly referenceChosenLogProbs: tf.Tensor1D;
  /** [B] reference-model sequence log-prob of each rejected completion. */
  readonly referenceRejectedLogProbs: tf.Tensor1D;
  /** Inverse temperature of the implicit reward, > 0 (TRL default 0.1). */
  readonly beta: number;
  /** Default 'sigmoid'. */
  readonly lossType?: DpoLossType;
  /** Assumed probability eps that a label is flipped, for 'sigmoid' (cDPO) and 'robust'; default 0. */
  readonly labelSmoothing?: number;
  /** Weight alpha of the chosen replies' NLL (RPO); default 0 (plain DPO). Needs `chosenNll`. */
  readonly rpoAlpha?: number;
  /** Scalar: the mean negative log-prob per token of the chosen completions (all chosen tokens of the batch). */
  readonly chosenNll?: tf.Scalar;
}

/** DPO's metrics, and `nll_loss` (the chosen replies' mean token NLL) when `chosenNll` was given. */
export type DpoLossOutput = LossOutput<DpoMetricName> & { readonly metrics: { readonly nll_loss?: number } };

export function dpoLoss(args: DpoLossArgs): DpoLossOutput {
  const fn = 'dpoLoss';
  const { policyChosenLogProbs: piC, policyRejectedLogProbs: piR, referenceChosenLogProbs: refC, referenceRejectedLogProbs: refR } = args;
  assertRank(fn, 'policyChosenLogProbs', piC, 1, '[B]');
  assertFloat(fn, 'policyChosenLogProbs', piC);
  for (const [name, t] of [
    ['policyRejectedLogProbs', piR],
    ['referenceChosenLogProbs', refC],
    ['referenceRejectedLogProbs', refR],
  ] as const) {
    assertShape(fn, name, t, piC.shape, 'policyChosenLogProbs');
    assertFloat(fn, name, t);
  }
  const lossType = args.lossType ?? 'sigmoid';
  assertOneOf(fn, 'lossType', lossType, DPO_LOSS_TYPES);
  const beta = args.beta;
  assertNumber(fn, 'beta', beta, { minExclusive: 0 });
  const eps = args.labelSmoothing ?? 0;
  if (lossType === 'sigmoid') assertNumber(fn, 'labelSmoothing', eps, { min: 0, max: 0.5 });
  else if (lossType === 'robust') assertNumber(fn, 'labelSmoothing', eps, { min: 0, maxExclusive: 0.5 });
  else if (eps !== 0) {
    throw new Error(`${fn}: labelSmoothing applies only to lossType "sigmoid" and "robust", got ${eps} with lossType "${lossType}"`);
  }
  const rpoAlpha = args.rpoAlpha ?? 0;
  assertNumber(fn, 'rpoAlpha', rpoAlpha, { min: 0 });
  const nll = args.chosenNll;
  if (nll !== undefined) {
    assertRank(fn, 'chosenNll', nll, 0, '[] (a scalar)');
    assertFloat(fn, 'chosenNll', nll);
  } else if (rpoAlpha > 0) throw new Error(`${fn}: rpoAlpha ${rpoAlpha} needs chosenNll, the chosen completions' mean NLL per token`);

  return tidyLoss<DpoMetricName | 'nll_loss'>(() => {
    const chosenLogRatio = tf.sub(piC, refC); // (B)
    const rejectedLogRatio = tf.sub(piR, refR); // (B)
    const x = tf.sub(chosenLogRatio, rejectedLogRatio); // (B) = (pi_c - pi_r) - (ref_c - ref_r)
    const bx = tf.mul(beta, x);
    let losses: tf.Tensor;
    switch (lossType) {
      case 'sigmoid':
        losses = tf.sub(tf.mul(tf.neg(logSigmoid(bx)), 1 - eps), tf.mul(logSigmoid(tf.neg(bx)), eps));
        break;
      case 'robust':
        losses = tf.div(tf.add(tf.mul(tf.neg(logSigmoid(bx)), 1 - eps), tf.mul(logSigmoid(tf.neg(bx)), eps)), 1 - 2 * eps);
        break;
      case 'hinge':
        losses = tf.relu(tf.sub(1, bx));
        break;
      case 'ipo': {
        const d = tf.sub(x, 1 / (2 * beta));
        losses = tf.mul(d, d);
        break;
      }
    }
    const preference = tf.mean(losses) as tf.Scalar;
    const loss = nll !== undefined && rpoAlpha > 0 ? (tf.add(preference, tf.mul(rpoAlpha, nll)) as tf.Scalar) : preference;
    const chosenRewards = tf.mul(beta, chosenLogRatio);
    const rejectedRewards = tf.mul(beta, rejectedLogRatio);
    return {
      loss,
      metrics: {
        'loss/dpo': preference,
        'rewards/chosen': tf.mean(chosenRewards),
        'rewards/rejected': tf.mean(rejectedRewards),
        'rewards/margins': tf.mean(tf.sub(chosenRewards, rejectedRewards)),
        'rewards/accuracies': tf.mean(tf.cast(tf.greater(chosenRewards, rejectedRewards), 'float32')),
        'logps/chosen': tf.mean(piC),
        'logps/rejected': tf.mean(piR),
        ...(nll !== undefined ? { nll_loss: nll } : {}),
      } as Record<DpoMetricName | 'nll_loss', tf.Tensor>,
    };
  });
}
