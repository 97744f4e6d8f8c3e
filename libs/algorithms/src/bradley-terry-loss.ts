/**
 * Reward-model loss under the Bradley-Terry preference model.
 *
 * P(chosen > rejected) = sigma(r_c - r_r) (Bradley and Terry 1952; Ouyang et al.
 * 2022, InstructGPT, eq. 1), so the negative log-likelihood is
 *   L = -mean_i log sigma(r_c,i - r_r,i - m_i)
 * with an optional margin m (Touvron et al. 2023, Llama 2, eq. 2: the preferred
 * answer must win by m), plus an optional centering regulariser
 *   + coef * mean_i (r_c,i + r_r,i)^2
 * (Eisenstein et al. 2023, "Helping or Herding?", which keeps rewards near zero
 * mean since the loss only sees differences). This is TRL's RewardTrainer loss.
 * `rewards/accuracies` counts r_c > r_r strictly (a tie is a miss).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LossOutput } from './loss-output';
import { logSigmoid } from './log-sigmoid';
import { assertFloat, assertNumber, assertRank, assertShape } from './shape-checks';
import { tidyLoss } from './tidy-loss';

export type BradleyTerryMetricName =
  | 'loss/reward'
  | 'rewards/chosen'
  | 'rewards/rejected'
  | 'rewards/margins'
  | 'rewards/accuracies';

export interface BradleyTerryLossArgs {
  /** [B] scalar reward of each chosen completion. */
  readonly chosenRewards: tf.Tensor1D;
  /** [B] scalar reward of each rejected completion. */
  readonly rejectedRewards: tf.Tensor1D;
  /** Required reward gap: one number for all pairs, or [B] per pair. Default none. */
  readonly margin?: number | tf.Tensor1D;
  /** Coefficient of mean((r_c + r_r)^2); default 0 (off). */
  readonly centeringCoefficient?: number;
}

export function bradleyTerryLoss(args: BradleyTerryLossArgs): LossOutput<BradleyTerryMetricName> {
  const fn = 'bradleyTerryLoss';
  const { chosenRewards, rejectedRewards, margin } = args;
  assertRank(fn, 'chosenRewards', chosenRewards, 1, '[B]');
  assertFloat(fn, 'chosenRewards', chosenRewards);
  assertShape(fn, 'rejectedRewards', rejectedRewards, chosenRewards.shape, 'chosenRewards');
  assertFloat(fn, 'rejectedRewards', rejectedRewards);
  if (typeof margin === 'number') assertNumber(fn, 'margin', margin);
  else if (margin !== undefined) {
    assertShape(fn, 'margin', margin, chosenRewards.shape, 'chosenRewards');
    assertFloat(fn, 'margin', margin);
  }
  const coef = args.centeringCoefficient ?? 0;
  assertNumber(fn, 'centeringCoefficient', coef, { min: 0 });
  return tidyLoss<BradleyTerryMetricName>(() => {
    const diff = tf.sub(chosenRewards, rejectedRewards); // (B)
    const shifted = margin === undefined ? diff : tf.sub(diff, margin);
    let loss = tf.neg(tf.mean(logSigmoid(shifted))) as tf.Scalar;
    if (coef > 0) {
      const sum = tf.add(chosenRewards, rejectedRewards);
      loss = tf.add(loss, tf.mul(coef, tf.mean(tf.mul(sum, sum)))) as tf.Scalar;
    }
    return {
      loss,
      metrics: {
        'loss/reward': loss,
        'rewards/chosen': tf.mean(chosenRewards),
        'rewards/rejected': tf.mean(rejectedRewards),
        'rewards/margins': tf.mean(diff),
        'rewards/accuracies': tf.mean(tf.cast(tf.greater(chosenRewards, rejectedRewards), 'float32')),
      },
    };
  });
}
