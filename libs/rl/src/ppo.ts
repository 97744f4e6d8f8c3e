/**
 * PPO-RLHF with a critic (Ziegler et al. 2019; Ouyang et al. 2022; as TRL's
 * PPOTrainer and OpenRLHF build it). One step, top to bottom:
 *
 *   1-4. rollouts, pi_old, pi_ref and scores (collect-experience.ts)
 *   5.   per-token rewards r_t = -beta kl_t, + the score at the last token;
 *        critic values V(s_t); GAE advantages and returns (optionally whitened)
 *   6.   epochs x shuffled minibatches: the clipped policy loss (+ a KL loss term
 *        when the KL is placed in the loss, + an entropy bonus, + ptx_coef x the
 *        next-token loss on a batch of the pretraining mix: PPO-ptx, ptx-mix.ts)
 *        and the clipped value loss on the critic; AdamW, gradient clipping, NaN skipping.
 *        The critic learns at ppo.critic_learning_rate when set (on the policy's
 *        schedule), and for the first ppo.freezing_actor_steps steps it alone
 *        trains: the policy (and what the samplers serve) stays the start model
 *   7.   the adaptive KL controller sees the batch's KL
 *   8.   the new weights go to every sampler (update-step.ts)
 */
import * as tf from '@tensorflow/tfjs-core';
import { computeGae, entropyBonusLoss, klPenalisedRewards, klPenaltyLoss, maskedWhiten, ppoPolicyLoss, ppoValueLoss } from '@posttrain/algorithms';
import type { StepOutcome } from '@posttrain/training';
import { learningRateAt } from '@posttrain/training';
import { collectExperience } from './collect-experience';
import type { RunRlOptions, RunRlResult } from './online-run';
import { runOnline } from './online-run';
import type { OnlineRun } from './online-run';
import type { RlRunConfig } from './rl-run-config';
import { RlConfigError } from './rl-run-config';
import { criticValues, mapRowChunks, policyForward } from './rollout-batch';
import { MetricMeans, finishStep, optimizerStep, recordUpdate, shuffledMinibatches, skippedStep } from './update-step';

/** 1 - Var(returns - values) / Var(returns) over valid tokens (CleanRL's explained variance). */
export function explainedVariance(values: Float32Array, returns: Float32Array, mask: Float32Array): number {
  const variance = (at: (i: number) => number) => {
    let sum = 0;
    let count = 0;
    for (let i = 0; i < mask.length; i++) {
      if (mask[i] === 1) {
        sum += at(i);
        count++;
      }
    }
    const mean = sum / count;
    let squares = 0;
    for (let i = 0; i < mask.length; i++) if (mask[i] === 1) squares += (at(i) - mean) ** 2;
    return squares / count;
  };
  const varReturns = variance((i) => returns[i]);
  return varReturns === 0 ? Number.NaN : 1 - variance((i) => returns[i] - values[i]) / varReturns;
}

async function ppoStep(run: OnlineRun, step: number): Promise<StepOutcome> {
  const { config } = run;
  const ppo = config.ppo!;
  const critic = run.critic!;
  const started = Date.now();
  const lr = learningRateAt(step - 1, run.schedule);
  // The critic's rate: the same schedule from critic_learning_rate.
  const criticLr = ppo.criticLearningRate === null ? lr : learningRateAt(step - 1, { ...run.schedule, baseLr: ppo.criticLearningRate });
  const actorFrozen = step <= ppo.freezingActorSteps;
  const temperature = config.sampling.temperature;

  // 1-4. Rollouts, old log-probs, reference log-probs, scores.
  const { experience, rolloutMetrics } = await collectExperience(run, step);
  if (!experience) return skippedStep(run, step, rolloutMetrics);
  const { batch, oldLogProbs, refLogProbs, scores } = experience;
  const { batch: B, time: T, actionMask } = batch;

  // 5. KL-penalised per-token rewards, critic values, GAE.
  const oldValues = mapRowChunks(batch, run.forwardChunk, (part) => criticValues(critic.model, part));
  let advantages: Float32Array = new Float32Array(0);
  let returns: Float32Array = new Float32Array(0);
  const objective: Record<string, number> = {};
  tf.tidy(() => {
    const mask = tf.tensor2d(actionMask, [B, T]);
    const oldLp = tf.tensor2d(oldLogProbs, [B, T]);
    const shaped = klPenalisedRewards({
      logProbs: oldLp,
      refLogProbs: refLogProbs ? tf.tensor2d(refLogProbs, [B, T]) : oldLp,
      actionMask: mask,
      scores: tf.tensor1d(scores),
      klCoefficient: config.kl.placement === 'reward' ? run.kl.value : 0,
      estimator: config.kl.estimator,
    });
    Object.assign(objective, shaped.metrics, { 'objective/kl_coef': run.kl.value });
    const gae = computeGae({ rewards: shaped.rewards, values: tf.tensor2d(oldValues, [B, T]), actionMask: mask, gamma: ppo.gamma, lambda: ppo.gaeLambda });
    returns = gae.returns.dataSync() as Float32Array;
    advantages = (ppo.whitenAdvantages ? tf.mul(maskedWhiten(gae.advantages, mask), mask) : gae.advantages).dataSync() as Float32Array;
  });
  objective['val/explained_variance'] = explainedVariance(oldValues, returns, actionMask);
  advantages = advantages.map((a, i) => a * experience.importanceWeights[i]);

  // 6. Epochs over shuffled minibatches: the policy, then the critic.
  const means = new MetricMeans();
  const klInLoss = config.kl.placement === 'loss' && refLogProbs !== null && run.kl.value > 0;
  for (const minibatch of shuffledMinibatches(run.rng, batch, config.epochs, config.minibatchSize)) {
    const { pick } = minibatch;
    const metrics: Record<string, number> = {};
    const ptxBatch = run.ptx && !actorFrozen ? await run.ptx.next() : null;
    const policyUpdate = actorFrozen ? null : optimizerStep(run.policy.params, run.policy.optimizer, lr, config.optimizer.maxGradNorm, () => {
      const { logProbs, entropy } = policyForward(run.policy.model, minibatch.batch, temperature);
      const mask = pick(actionMask);
      const clipped = ppoPolicyLoss({ logProbs, oldLogProbs: pick(oldLogProbs), advantages: pick(advantages), actionMask: mask, clipLow: config.clipLow, clipHigh: config.clipHigh, dualClip: config.dualClip ?? undefined, aggregation: 'token-mean' });
      Object.assign(metrics, clipped.metrics);
      let loss: tf.Scalar = clipped.loss;
      if (klInLoss) {
        const klTerm = klPenaltyLoss({ logProbs, refLogProbs: pick(refLogProbs!), actionMask: mask, coefficient: run.kl.value, estimator: config.kl.estimator, aggregation: 'token-mean' });
        metrics['loss/kl'] = klTerm.metrics['loss/kl'];
        loss = tf.add(loss, klTerm.loss);
      }
      const bonus = entropyBonusLoss({ entropy, actionMask: mask, coefficient: ppo.entropyCoefficient });
      metrics['objective/entropy'] = bonus.metrics['objective/entropy'];
      if (ppo.entropyCoefficient > 0) loss = tf.add(loss, bonus.loss);
      if (run.ptx && ptxBatch) {
        const ptx = run.ptx.loss(run.policy.model, ptxBatch);
        Object.assign(metrics, ptx.metrics);
        loss = tf.add(loss, ptx.loss);
      }
      return loss;
    });
    if (policyUpdate) metrics['policy/grad_norm'] = policyUpdate.norm;
    const valueUpdate = optimizerStep(critic.params, critic.optimizer, criticLr, config.optimizer.maxGradNorm, () => {
      const values = criticValues(critic.model, minibatch.batch);
      const valueLoss = ppoValueLoss({ values, oldValues: pick(oldValues), returns: pick(returns), actionMask: pick(actionMask), clipRange: ppo.valueClip ?? undefined });
      metrics['loss/value'] = valueLoss.metrics['loss/value'];
      metrics['val/clipfrac'] = valueLoss.metrics['value/clipfrac'];
      metrics['val/mean'] = valueLoss.metrics['value/mean'];
      return tf.mul(ppo.valueLossCoefficient, valueLoss.loss) as tf.Scalar;
    });
    metrics['val/grad_norm'] = valueUpdate.norm;
    const reported = policyUpdate ?? valueUpdate;
    recordUpdate(run, step, minibatch.epoch, (policyUpdate?.skipped ?? false) || valueUpdate.skipped, reported.loss, reported.norm, policyUpdate ? 'policy' : 'critic');
    means.add(metrics);
  }
  objective['train/actor_frozen'] = actorFrozen ? 1 : 0;
  objective['train/critic_learning_rate'] = criticLr;

  // 7-8. KL controller, weight push, metrics.
  return finishStep(run, step, started, lr, experience, { ...objective, ...means.get() });
}

/**
 * Runs a PPO stage to completion or cancellation. Writes <outputDir>/<runId>/: config.json,
 * metrics.jsonl, TensorBoard events, checkpoints/step-N/ (model/, value_model/, optimizer states,
 * trainer_state.json), model/, report.html.
 */
export async function runPpo(config: RlRunConfig, options: RunRlOptions = {}): Promise<RunRlResult> {
  if (config.algorithm !== 'ppo' || !config.ppo) throw new RlConfigError('stage', `runPpo got a ${config.algorithm} config`);
  return runOnline(config, options, { withCritic: true, step: ppoStep });
}
