/**
 * @posttrain/algorithms: pure post-training losses and estimators on
 * @tensorflow/tfjs-core tensors. Nothing here touches a model or an optimizer.
 *
 * Conventions: masks are float 0/1 tensors ([B,T], 1 = token counts); masked
 * reductions treat an all-zero row as contributing 0 and leaving the
 * denominator; every loss returns `{ loss, metrics }` with `loss` a scalar tensor
 * (differentiable, owned by the caller) and `metrics` plain numbers named as in
 * TRL / CleanRL. Estimators (GAE, group advantages, KL rewards) return named
 * tensors the caller owns.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { gatherLogProbs, ppoPolicyLoss } from '@posttrain/algorithms';
 * const { value, grads } = tf.variableGrads(() => {
 *   const logProbs = gatherLogProbs(model.logits(inputIds), labels);
 *   const { loss, metrics } = ppoPolicyLoss({ logProbs, oldLogProbs, advantages, actionMask, clipLow: 0.2 });
 *   log(metrics['policy/clipfrac']);
 *   return loss;
 * });
 * ```
 */
export type { LossOutput } from './loss-output';
export { maskedSum, maskedMean, maskedVariance, maskedWhiten } from './masked-reductions';
export type { MaskedWhitenOptions } from './masked-reductions';
export { aggregateLoss, LOSS_AGGREGATIONS } from './aggregate-loss';
export type { LossAggregation, AggregateLossOptions } from './aggregate-loss';
export { logSigmoid } from './log-sigmoid';
export { logProbsFromLogits, gatherLogProbs, sequenceLogProbs } from './log-probs';
export type { LogProbsOptions, SequenceLogProbs } from './log-probs';
export { entropyFromLogits } from './entropy-from-logits';
export { entropyBonusLoss } from './entropy-bonus-loss';
export type { EntropyBonusLossArgs, EntropyBonusMetricName } from './entropy-bonus-loss';
export { sftLoss, sftLossFromLogProbs } from './sft-loss';
export type { SftLossArgs, SftLossFromLogProbsArgs, SftReduction, SftMetricName, SftLogitsMetricName } from './sft-loss';
export { bradleyTerryLoss } from './bradley-terry-loss';
export type { BradleyTerryLossArgs, BradleyTerryMetricName } from './bradley-terry-loss';
export { dpoLoss, DPO_LOSS_TYPES } from './dpo-loss';
export type { DpoLossArgs, DpoLossType, DpoMetricName } from './dpo-loss';
export { ppoPolicyLoss } from './ppo-policy-loss';
export type { PpoPolicyLossArgs, PpoPolicyMetricName } from './ppo-policy-loss';
export { ppoValueLoss } from './ppo-value-loss';
export type { PpoValueLossArgs, PpoValueMetricName } from './ppo-value-loss';
export { computeGae } from './compute-gae';
export type { GaeArgs, GaeEstimate } from './compute-gae';
export { klEstimate, klPenaltyLoss, klPenalisedRewards, KL_ESTIMATORS } from './kl-estimators';
export type { KlEstimator, KlPenaltyLossArgs, KlPenaltyMetricName, KlPenalisedRewardsArgs, KlPenalisedRewards, KlRewardMetricName } from './kl-estimators';
export { FixedKlController, AdaptiveKlController, klControllerFromState } from './kl-controller';
export type { KlController, KlControllerState } from './kl-controller';
export {
  grpoAdvantages,
  drGrpoAdvantages,
  rlooAdvantages,
  reinforcePlusPlusBaselineAdvantages,
} from './group-advantages';
export type { GroupAdvantages, GroupAdvantageMetricName } from './group-advantages';
