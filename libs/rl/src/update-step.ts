/**
 * The pieces of an RL update that PPO and GRPO share: one clipped AdamW step
 * on a loss, shuffled minibatches over the epochs, running means of the
 * minibatch metrics, and the end of a step (KL controller, weight push, the
 * step's metrics).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@posttrain/random';
import type { AdamW, NamedVariable, StepOutcome } from '@posttrain/training';
import { clipGradNorm } from '@posttrain/training';
import type { Experience } from './collect-experience';
import type { OnlineRun } from './online-run';
import { poolMetrics } from './online-run';
import type { RolloutBatch } from './rollout-batch';
import { selectRows, selectRowsOf } from './rollout-batch';

/** Gradients of `lossFn` w.r.t. params, clipped; applies AdamW unless non-finite. */
export function optimizerStep(params: NamedVariable[], optimizer: AdamW, lr: number, maxGradNorm: number | null, lossFn: () => tf.Scalar): { loss: number; norm: number; skipped: boolean } {
  const { value, grads } = tf.variableGrads(lossFn, params.map((p) => p.variable));
  const loss = value.dataSync()[0];
  value.dispose();
  const list = params.map((p) => grads[p.variable.name] ?? tf.zerosLike(p.variable));
  const clipped = clipGradNorm(list, maxGradNorm);
  const skipped = !Number.isFinite(loss) || !Number.isFinite(clipped.norm);
  if (!skipped) optimizer.apply(clipped.grads, lr);
  tf.dispose(clipped.grads);
  return { loss, norm: clipped.norm, skipped };
}

/** Running means of per-minibatch metrics. */
export class MetricMeans {
  private readonly sums = new Map<string, [number, number]>();
  add(metrics: Record<string, number>): void {
    for (const [name, value] of Object.entries(metrics)) {
      const [sum, count] = this.sums.get(name) ?? [0, 0];
      this.sums.set(name, [sum + value, count + 1]);
    }
  }
  get(): Record<string, number> {
    return Object.fromEntries([...this.sums].map(([name, [sum, count]]) => [name, sum / count]));
  }
}

/** One minibatch: its rows of the batch, and `pick` to cut any [B*T] array of the batch to them as a tensor. */
export interface Minibatch {
  epoch: number;
  rows: number[];
  batch: RolloutBatch;
  pick(flat: Float32Array): tf.Tensor2D;
}

/** Epochs over the batch, each a fresh shuffle of its rows cut into minibatches of `size` (the last may be smaller). */
export function* shuffledMinibatches(rng: Rng, batch: RolloutBatch, epochs: number, size: number): Generator<Minibatch> {
  const rowsPerMinibatch = Math.min(size, batch.batch);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = rng.shuffle(Array.from({ length: batch.batch }, (_, i) => i));
    for (let start = 0; start < batch.batch; start += rowsPerMinibatch) {
      const rows = order.slice(start, start + rowsPerMinibatch);
      const minibatch = selectRows(batch, rows);
      yield { epoch, rows, batch: minibatch, pick: (flat) => tf.tensor2d(selectRowsOf(flat, batch.time, rows, minibatch.time), [rows.length, minibatch.time]) };
    }
  }
}

/**
 * Counts a minibatch update as skipped or not; too many skipped in a row stop the run. `loss` and
 * `norm` are the named model's (the critic's while PPO's actor is frozen).
 */
export function recordUpdate(run: OnlineRun, step: number, epoch: number, skipped: boolean, loss: number, norm: number, model: 'policy' | 'critic' = 'policy'): void {
  run.skips.record(skipped, (inARow) => `step ${step}: ${inARow} minibatch updates in a row had a non-finite loss or gradient (${model} loss ${loss}, grad norm ${norm}); lower optimizer.learning_rate`);
  if (skipped) run.logger.warn('non-finite loss or gradient: minibatch update skipped', { step, epoch, model, loss, gradNorm: norm, consecutiveSkips: run.skips.consecutive });
}

/** A step without usable rollouts (all too stale): counted as skipped. */
export function skippedStep(run: OnlineRun, step: number, rolloutMetrics: Record<string, number>): StepOutcome {
  const maxStaleness = run.config.stale.maxStaleness;
  run.skips.record(true, (inARow) => `step ${step}: ${inARow} steps in a row had no usable rollouts (all older than max_staleness = ${maxStaleness}); the samplers are not receiving weight pushes`);
  run.logger.warn('every rollout of the step was too stale; step skipped', { step, stale: rolloutMetrics['rollout/stale'], dropped: rolloutMetrics['rollout/dropped'] });
  return { metrics: { ...rolloutMetrics, ...poolMetrics(run.pool), 'train/skipped_steps': run.skips.total }, skipped: true };
}

/**
 * The end of a step: the adaptive KL controller sees the batch's KL (Ziegler et al.: n = batch size),
 * the new weights go to every sampler as version n + 1, and the step's metrics are assembled.
 */
export async function finishStep(run: OnlineRun, step: number, started: number, lr: number, experience: Experience, stepMetrics: Record<string, number>): Promise<StepOutcome> {
  const B = experience.batch.batch;
  run.kl.update(stepMetrics['objective/kl'], B);
  const push = await run.pushPolicy(run.weightsVersion + 1);
  run.samples += B;
  const metrics: Record<string, number> = {
    ...stepMetrics,
    ...experience.metrics,
    'rollout/weights_version': run.weightsVersion,
    'rollout/samplers_acked': push.acked.length,
    ...poolMetrics(run.pool),
    'train/learning_rate': lr,
    'train/epoch': (step * run.config.promptsPerStep) / run.promptCount,
    'train/skipped_steps': run.skips.total,
    'train/samples': run.samples,
    'time/step_seconds': (Date.now() - started) / 1000,
    'time/push_seconds': run.lastPush.seconds,
    'time/generation_busy_seconds': run.rollouts.busySeconds(),
    'push/bytes': run.lastPush.bytes,
  };
  run.logger.info('step', { step, totalSteps: run.totalSteps, scores: metrics['objective/scores'], kl: metrics['objective/kl'], klCoef: metrics['objective/kl_coef'] });
  return { metrics, skipped: false, samples: experience.samples };
}
