/**
 * GRPO and its critic-free relatives (DeepSeekMath's GRPO, Dr. GRPO, RLOO,
 * REINFORCE++-baseline), as TRL's GRPOTrainer and OpenRLHF build them. One
 * step, top to bottom:
 *
 *   1-4. a group of n rollouts per prompt, pi_old, pi_ref and scores (collect-experience.ts)
 *   5.   one score per sequence (minus beta * sum_t kl_t when the KL is a reward
 *        penalty); group-relative advantages, the same on every token of a sequence
 *   6.   iterations x shuffled minibatches: the clipped policy loss with the
 *        configured aggregation (+ the k-estimator KL term when the KL is in the
 *        loss, DeepSeekMath eq. 3), without the rollouts cut at the length limit
 *        under mask_truncated_completions; AdamW, gradient clipping, NaN skipping
 *   7.   the adaptive KL controller sees the batch's KL
 *   8.   the new weights go to every sampler (update-step.ts)
 */
import * as tf from '@tensorflow/tfjs-core';
import { drGrpoAdvantages, entropyBonusLoss, grpoAdvantages, klPenalisedRewards, klPenaltyLoss, ppoPolicyLoss, reinforcePlusPlusBaselineAdvantages, rlooAdvantages } from '@posttrain/algorithms';
import type { GroupAdvantages } from '@posttrain/algorithms';
import type { StepOutcome } from '@posttrain/training';
import { learningRateAt } from '@posttrain/training';
import { collectExperience } from './collect-experience';
import type { RunRlOptions, RunRlResult } from './online-run';
import { runOnline } from './online-run';
import type { OnlineRun } from './online-run';
import type { GroupEstimator, RlRunConfig } from './rl-run-config';
import { RlConfigError } from './rl-run-config';
import { policyForward } from './rollout-batch';
import { maskTruncatedRows } from './truncated-rollouts';
import { MetricMeans, finishStep, optimizerStep, recordUpdate, shuffledMinibatches, skippedStep } from './update-step';

/** The advantage estimator a config names, over scores laid out as consecutive groups. */
export function groupAdvantages(estimator: GroupEstimator, scores: tf.Tensor1D, groupSize: number): GroupAdvantages {
  switch (estimator) {
    case 'grpo':
      return grpoAdvantages(scores, groupSize);
    case 'dr-grpo':
      return drGrpoAdvantages(scores, groupSize);
    case 'rloo':
      return rlooAdvantages(scores, groupSize);
    case 'reinforce-pp-baseline':
      return reinforcePlusPlusBaselineAdvantages(scores, groupSize);
  }
}

async function grpoStep(run: OnlineRun, step: number): Promise<StepOutcome> {
  const { config } = run;
  const grpo = config.grpo!;
  const started = Date.now();
  const lr = learningRateAt(step - 1, run.schedule);
  const temperature = config.sampling.temperature;
  const groupSize = config.samplesPerPrompt;

  // 1-4. Groups of rollouts, old log-probs, reference log-probs, scores.
  const { experience, rolloutMetrics } = await collectExperience(run, step);
  if (!experience) return skippedStep(run, step, rolloutMetrics);
  const { batch, oldLogProbs, refLogProbs, scores } = experience;
  const { batch: B, time: T, actionMask } = batch;

  // 5. Sequence scores (KL-penalised when the KL is a reward penalty), group-relative advantages on every token.
  let advantages: Float32Array = new Float32Array(0);
  const objective: Record<string, number> = {};
  tf.tidy(() => {
    const mask = tf.tensor2d(actionMask, [B, T]);
    const oldLp = tf.tensor2d(oldLogProbs, [B, T]);
    const beta = config.kl.placement === 'reward' && refLogProbs ? run.kl.value : 0;
    const shaped = klPenalisedRewards({ logProbs: oldLp, refLogProbs: refLogProbs ? tf.tensor2d(refLogProbs, [B, T]) : oldLp, actionMask: mask, scores: tf.tensor1d(scores), klCoefficient: beta, estimator: config.kl.estimator });
    objective['objective/kl'] = shaped.metrics['objective/kl'];
    objective['objective/kl_per_token'] = shaped.metrics['objective/kl_per_token'];
    objective['objective/kl_coef'] = run.kl.value;
    objective['objective/scores'] = shaped.metrics['objective/scores'];
    const sequenceScores = beta > 0 ? tf.sub(tf.tensor1d(scores), tf.mul(beta, tf.sum(shaped.kl, 1))) : tf.tensor1d(scores);
    const group = groupAdvantages(grpo.estimator, sequenceScores as tf.Tensor1D, groupSize);
    Object.assign(objective, group.metrics);
    advantages = tf.mul(tf.expandDims(group.advantages, 1), mask).dataSync() as Float32Array; // A_i on every token of sequence i
  });
  advantages = advantages.map((a, i) => a * experience.importanceWeights[i]);

  // 6. Iterations over shuffled minibatches; truncated rollouts out of the loss when asked (their advantages were
  // computed with their groups above).
  const lossMask = grpo.maskTruncated ? maskTruncatedRows(actionMask, experience.truncated, T) : actionMask;
  const means = new MetricMeans();
  const klInLoss = config.kl.placement === 'loss' && refLogProbs !== null && run.kl.value > 0;
  const normaliser = grpo.aggregation === 'seq-mean-token-sum-norm' ? config.sampling.maxNewTokens : undefined;
  for (const minibatch of shuffledMinibatches(run.rng, batch, config.epochs, config.minibatchSize)) {
    const { pick } = minibatch;
    const metrics: Record<string, number> = {};
    const update = optimizerStep(run.policy.params, run.policy.optimizer, lr, config.optimizer.maxGradNorm, () => {
      const { logProbs, entropy } = policyForward(run.policy.model, minibatch.batch, temperature);
      const mask = pick(lossMask);
      const clipped = ppoPolicyLoss({ logProbs, oldLogProbs: pick(oldLogProbs), advantages: pick(advantages), actionMask: mask, clipLow: config.clipLow, clipHigh: config.clipHigh, aggregation: grpo.aggregation, constantNormaliser: normaliser });
      Object.assign(metrics, clipped.metrics);
      let loss: tf.Scalar = clipped.loss;
      if (klInLoss) {
        const klTerm = klPenaltyLoss({ logProbs, refLogProbs: pick(refLogProbs!), actionMask: mask, coefficient: run.kl.value, estimator: config.kl.estimator, aggregation: grpo.aggregation, constantNormaliser: normaliser });
        metrics['loss/kl'] = klTerm.metrics['loss/kl'];
        loss = tf.add(loss, klTerm.loss);
      }
      metrics['objective/entropy'] = entropyBonusLoss({ entropy, actionMask: mask, coefficient: 0 }).metrics['objective/entropy'];
      return loss;
    });
    metrics['policy/grad_norm'] = update.norm;
    recordUpdate(run, step, minibatch.epoch, update.skipped, update.loss, update.norm);
    means.add(metrics);
  }

  // 7-8. KL controller, weight push, metrics.
  return finishStep(run, step, started, lr, experience, { ...objective, ...means.get() });
}

/**
 * Runs a GRPO stage (or RLOO, Dr. GRPO, REINFORCE++-baseline) to completion or cancellation.
 * Writes <outputDir>/<runId>/ as runPpo does, without a critic.
 */
export async function runGrpo(config: RlRunConfig, options: RunRlOptions = {}): Promise<RunRlResult> {
  if (config.algorithm !== 'grpo' || !config.grpo) throw new RlConfigError('stage', `runGrpo got a ${config.algorithm} config`);
  return runOnline(config, options, { withCritic: false, step: grpoStep });
}
