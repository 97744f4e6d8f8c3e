/**
 * Per-token estimators of KL(pi || pi_ref) from tokens sampled from pi
 * (Schulman 2020, "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html).
 * With d = logProbs - refLogProbs = log(pi / pi_ref) at the sampled token:
 *   k1 = d                       unbiased, high variance, can be negative
 *   k2 = d^2 / 2                 biased, low variance, >= 0
 *   k3 = (e^{-d} - 1) + d        unbiased, low variance, >= 0
 * k3 is Schulman's (r - 1) - log r with r = pi_ref / pi = e^{-d}: its mean
 * under pi is sum pi (pi_ref/pi) - 1 + KL = KL. (With r = pi / pi_ref instead,
 * the mean would not be the KL; DeepSeekMath eq. 4 and OpenRLHF's
 * compute_approx_kl use r = pi_ref / pi, as here.)
 *
 * Used two ways: as a per-token reward penalty (PPO-RLHF, klPenalisedRewards)
 * or as a loss term (GRPO, klPenaltyLoss).
 */
import * as tf from '@tensorflow/tfjs-core';
import { aggregateLoss, LOSS_AGGREGATIONS } from './aggregate-loss';
import type { LossAggregation } from './aggregate-loss';
import type { LossOutput } from './loss-output';
import { maskedMean, maskedSum } from './masked-reductions';
import { readScalars, tidyLoss } from './tidy-loss';
import { assertFloat, assertNumber, assertOneOf, assertRank, assertShape } from './shape-checks';

export type KlEstimator = 'k1' | 'k2' | 'k3';
export const KL_ESTIMATORS: readonly KlEstimator[] = ['k1', 'k2', 'k3'];

/** Per-token KL estimate, same shape as the inputs. */
export function klEstimate(logProbs: tf.Tensor, refLogProbs: tf.Tensor, estimator: KlEstimator): tf.Tensor {
  const fn = 'klEstimate';
  assertFloat(fn, 'logProbs', logProbs);
  assertShape(fn, 'refLogProbs', refLogProbs, logProbs.shape, 'logProbs');
  assertFloat(fn, 'refLogProbs', refLogProbs);
  assertOneOf(fn, 'estimator', estimator, KL_ESTIMATORS);
  return tf.tidy(() => {
    const d = tf.sub(logProbs, refLogProbs); // log(pi / pi_ref)
    switch (estimator) {
      case 'k1':
        return d;
      case 'k2':
        return tf.mul(0.5, tf.mul(d, d));
      case 'k3':
        return tf.add(tf.sub(tf.exp(tf.neg(d)), 1), d);
    }
  });
}

function checkPair(fn: string, logProbs: tf.Tensor2D, refLogProbs: tf.Tensor2D, actionMask: tf.Tensor2D): void {
  assertRank(fn, 'logProbs', logProbs, 2, '[B,T]');
  assertFloat(fn, 'logProbs', logProbs);
  assertShape(fn, 'refLogProbs', refLogProbs, logProbs.shape, 'logProbs');
  assertFloat(fn, 'refLogProbs', refLogProbs);
  assertShape(fn, 'actionMask', actionMask, logProbs.shape, 'logProbs');
}

export type KlPenaltyMetricName = 'loss/kl' | 'objective/kl' | 'objective/kl_per_token';

export interface KlPenaltyLossArgs {
  /** [B,T] log-probs of the sampled tokens under the policy being optimised (carries the gradient). */
  readonly logProbs: tf.Tensor2D;
  /** [B,T] log-probs of the same tokens under the reference model. */
  readonly refLogProbs: tf.Tensor2D;
  /** [B,T] 1 on response tokens, 0 on padding. */
  readonly actionMask: tf.Tensor2D;
  /** Coefficient beta >= 0 of the term. */
  readonly coefficient: number;
  /** Default 'k3' (GRPO, DeepSeekMath eq. 4). */
  readonly estimator?: KlEstimator;
  /** Default 'token-mean'; use the same mode as the policy loss it is added to. */
  readonly aggregation?: LossAggregation;
  /** For 'seq-mean-token-sum-norm'; see aggregateLoss. */
  readonly constantNormaliser?: number;
}

/**
 * KL as a loss term, beta * agg(kl_t) (GRPO: Shao et al. 2024, DeepSeekMath,
 * eq. 3-4). Metrics: `objective/kl` is the per-sequence sum averaged over
 * sequences (TRL PPO's definition), `objective/kl_per_token` the mean over
 * valid tokens (TRL GRPO's `kl`).
 */
export function klPenaltyLoss(args: KlPenaltyLossArgs): LossOutput<KlPenaltyMetricName> {
  const fn = 'klPenaltyLoss';
  checkPair(fn, args.logProbs, args.refLogProbs, args.actionMask);
  assertNumber(fn, 'coefficient', args.coefficient, { min: 0 });
  const estimator = args.estimator ?? 'k3';
  assertOneOf(fn, 'estimator', estimator, KL_ESTIMATORS);
  const aggregation = args.aggregation ?? 'token-mean';
  assertOneOf(fn, 'aggregation', aggregation, LOSS_AGGREGATIONS);
  return tidyLoss<KlPenaltyMetricName>(() => {
    const kl = klEstimate(args.logProbs, args.refLogProbs, estimator); // (B,T)
    const loss = tf.mul(args.coefficient, aggregateLoss(kl, args.actionMask, aggregation, { constantNormaliser: args.constantNormaliser })) as tf.Scalar;
    return {
      loss,
      metrics: {
        'loss/kl': loss,
        'objective/kl': aggregateLoss(kl, args.actionMask, 'seq-mean-token-sum'),
        'objective/kl_per_token': maskedMean(kl, args.actionMask),
      },
    };
  });
}

export type KlRewardMetricName =
  | 'objective/kl'
  | 'objective/kl_per_token'
  | 'objective/non_score_reward'
  | 'objective/rlhf_reward'
  | 'objective/scores';

export interface KlPenalisedRewardsArgs {
  /** [B,T] log-probs of the sampled tokens under the rollout policy. */
  readonly logProbs: tf.Tensor2D;
  /** [B,T] log-probs of the same tokens under the reference model. */
  readonly refLogProbs: tf.Tensor2D;
  /** [B,T] 1 on response tokens, 0 on padding. */
  readonly actionMask: tf.Tensor2D;
  /** [B] sequence-level score (reward model or verifiable reward). */
  readonly scores: tf.Tensor1D;
  /** KL coefficient beta >= 0 (from a KL controller). */
  readonly klCoefficient: number;
  /** Default 'k1' (TRL PPOTrainer's default kl_estimator). */
  readonly estimator?: KlEstimator;
}

/** Per-token rewards [B,T] and the per-token KL [B,T] used (caller owns both), with diagnostics. */
export interface KlPenalisedRewards {
  readonly rewards: tf.Tensor2D;
  readonly kl: tf.Tensor2D;
  readonly metrics: Readonly<Record<KlRewardMetricName, number>>;
}

/**
 * RLHF rewards with a per-token KL penalty (Ziegler et al. 2019, eq. 2;
 * Ouyang et al. 2022, eq. 2; as TRL PPOTrainer and OpenRLHF build them):
 *   rewards_t = -beta kl_t at every valid token, + score at the last valid token.
 * A row with no valid token gets all-zero rewards (its score has nowhere to go).
 * Metrics as TRL: objective/kl = mean_i sum_t kl, objective/non_score_reward =
 * mean_i sum_t (-beta kl), objective/rlhf_reward = that + mean score.
 */
export function klPenalisedRewards(args: KlPenalisedRewardsArgs): KlPenalisedRewards {
  const fn = 'klPenalisedRewards';
  const { logProbs, refLogProbs, actionMask, scores, klCoefficient } = args;
  checkPair(fn, logProbs, refLogProbs, actionMask);
  assertShape(fn, 'scores', scores, [logProbs.shape[0]], 'logProbs[B]');
  assertFloat(fn, 'scores', scores);
  assertNumber(fn, 'klCoefficient', klCoefficient, { min: 0 });
  const estimator = args.estimator ?? 'k1';
  assertOneOf(fn, 'estimator', estimator, KL_ESTIMATORS);
  const time = logProbs.shape[1];
  let metrics = {} as Record<KlRewardMetricName, number>;
  const [rewards, kl] = tf.tidy(() => {
    const mask = tf.cast(actionMask, 'float32'); // (B,T)
    const klTok = tf.where(tf.notEqual(mask, 0), klEstimate(logProbs, refLogProbs, estimator), tf.zerosLike(mask)); // (B,T)
    const nonScore = tf.mul(-klCoefficient, klTok); // (B,T)
    // Last valid index per row: argmax over t of (t + 1) * mask (0 for an empty row, then masked away).
    const positions = tf.add(tf.range(0, time, 1, 'float32'), 1); // (T)
    const lastIdx = tf.argMax(tf.mul(mask, positions), 1); // (B)
    // int32 one-hot, then cast: the wasm backend's OneHot returns zeros when asked for float32 directly.
    const atLast = tf.mul(tf.cast(tf.oneHot(lastIdx, time), 'float32'), mask); // (B,T)
    const total = tf.add(nonScore, tf.mul(atLast, tf.expandDims(scores, 1))); // (B,T)
    const rowHasTokens = tf.cast(tf.greater(tf.sum(mask, 1), 0), 'float32'); // (B)
    const klSeq = maskedSum(klTok, mask, 1); // (B)
    const nonScoreSeq = maskedSum(nonScore, mask, 1); // (B)
    metrics = readScalars({
      'objective/kl': maskedMean(klSeq, rowHasTokens),
      'objective/kl_per_token': maskedMean(klTok, mask),
      'objective/non_score_reward': maskedMean(nonScoreSeq, rowHasTokens),
      'objective/rlhf_reward': tf.add(maskedMean(nonScoreSeq, rowHasTokens), tf.mean(scores)),
      'objective/scores': tf.mean(scores),
    });
    return [total as tf.Tensor2D, klTok as tf.Tensor2D];
  });
  return { rewards, kl, metrics };
}
