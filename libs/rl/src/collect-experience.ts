/**
 * The first half of every online RL step, the same for PPO and GRPO:
 *
 *   1. rollouts: the step's prompts fan out over the sampler pool (n each);
 *      stale rollouts are counted, dropped, or importance-weighted
 *   2. old log-probs: the trainer's policy on the rollouts (pi_old of the ratio)
 *   3. reference log-probs (when the KL term is on)
 *   4. scores from the reward service, less missing_eos_penalty for rollouts
 *      that hit the length limit (truncated-rollouts.ts)
 *
 * What it returns is plain arrays [B*T] aligned like the RolloutBatch.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GenerationSample } from '@posttrain/training';
import { spreadIndices } from '@posttrain/training';
import type { OnlineRun } from './online-run';
import type { RolloutBatch } from './rollout-batch';
import { buildRolloutBatch, mapRowChunks, policyForward } from './rollout-batch';
import type { Rollout } from './rollout-types';
import { filterStaleRollouts, importanceWeights } from './stale-rollouts';
import { penalizeMissingEos, truncatedRollouts, truncationMetrics } from './truncated-rollouts';

export interface Experience {
  rollouts: Rollout[];
  batch: RolloutBatch;
  /** log pi_old per token [B*T] (0 outside the action mask). */
  oldLogProbs: Float32Array;
  /** log pi_ref per token [B*T]; null when the KL term is off. */
  refLogProbs: Float32Array | null;
  /** Reward of each rollout [B] (missing_eos_penalty already subtracted). */
  scores: Float32Array;
  /** Per rollout: it hit the length limit without a stop. */
  truncated: boolean[];
  /** Per-token importance weights [B*T] of stale rollouts (1 elsewhere). */
  importanceWeights: Float32Array;
  /** rollout/* and rewards/* metrics. */
  metrics: Record<string, number>;
  /** A few rollouts as text with their scores (spread over the batch), for the run's events. */
  samples: GenerationSample[];
}

/** Rollouts the step reports as text (StepEvent.samples). */
export const SAMPLES_PER_STEP = 4;

/** Mean of values[i] over mask[i] = 1 (0 when none). */
function hostMaskedMean(values: Float32Array, mask: Float32Array): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask[i] === 1) {
      sum += values[i];
      count++;
    }
  }
  return count > 0 ? sum / count : 0;
}

/** Staleness counts (current version minus the rollout's) as rollout/staleness_<k> metrics, 0 to maxStaleness + 1 (the last: older). */
function stalenessHistogram(rollouts: readonly Rollout[], current: number, maxStaleness: number): Record<string, number> {
  const counts = new Array<number>(maxStaleness + 2).fill(0);
  for (const rollout of rollouts) counts[Math.min(Math.max(0, current - rollout.weightsVersion), maxStaleness + 1)]++;
  return Object.fromEntries(counts.map((count, k) => [k === maxStaleness + 1 ? 'rollout/staleness_older' : `rollout/staleness_${k}`, count]));
}

/**
 * Collects step `step`'s experience. Returns the rollout metrics alone (`experience: null`)
 * when every rollout was too stale to use.
 */
export async function collectExperience(run: OnlineRun, step: number): Promise<{ experience: Experience | null; rolloutMetrics: Record<string, number> }> {
  const { config } = run;
  const groupSize = config.samplesPerPrompt;
  const temperature = config.sampling.temperature;

  // 1. Rollouts (sent this step, or up to max_staleness steps ago); stale ones counted and handled by the policy.
  const { prompts: promptOf, generated, waitSeconds } = await run.rollouts.take(step);
  const current = run.weightsVersion;
  const { kept, stale, dropped } = filterStaleRollouts(generated.rollouts, current, config.stale.maxStaleness, config.grpo ? groupSize : 1);
  run.ledger.record(step, current, promptOf, generated.rollouts, kept);
  const rolloutMetrics: Record<string, number> = {
    'rollout/count': generated.rollouts.length,
    'rollout/stale': stale,
    'rollout/dropped': dropped,
    'rollout/retries': generated.retries,
    'rollout/in_flight_steps': run.rollouts.inFlight,
    'time/rollout_wait_seconds': waitSeconds,
    ...stalenessHistogram(generated.rollouts, current, config.stale.maxStaleness),
    ...Object.fromEntries(config.samplers.map((address, i) => [`rollout/sampler_${i}`, generated.perSampler[address]])),
  };
  if (kept.length === 0) return { experience: null, rolloutMetrics };
  const batch = buildRolloutBatch(kept, run.tokenizer.padTokenId);
  const { batch: B, time: T, actionMask } = batch;

  // 2. pi_old: the trainer's policy on the rollouts (matches the sampler's log-probs for fresh rollouts).
  const oldLogProbs = mapRowChunks(batch, run.forwardChunk, (part) => tf.tidy(() => policyForward(run.policy.model, part, temperature).logProbs));
  const freshTokens = new Float32Array(B * T);
  kept.forEach((rollout, b) => {
    if (rollout.weightsVersion === current) for (let t = 0; t < T; t++) freshTokens[b * T + t] = actionMask[b * T + t];
  });
  // The sampler-vs-trainer gap: |log pi_trainer - log pi_sampler| and the k3 KL estimate of the
  // sampler's tokens; on fresh rollouts it is numerics alone (a correctness alarm), on stale ones the policy change.
  const absDiff = oldLogProbs.map((v, i) => Math.abs(v - batch.behaviourLogProbs[i]));
  const k3 = oldLogProbs.map((v, i) => {
    const logRatio = batch.behaviourLogProbs[i] - v; // log(pi_sampler / pi_trainer) on the sampler's tokens
    return Math.exp(-logRatio) - 1 + logRatio;
  });
  const tis = config.truncatedImportanceSampling;
  const weights = tis
    ? importanceWeights({ currentLogProbs: oldLogProbs, behaviourLogProbs: batch.behaviourLogProbs, actionMask, staleRows: kept.map(() => true), time: T, cap: tis.cap })
    : config.stale.policy === 'importance-correct'
      ? importanceWeights({ currentLogProbs: oldLogProbs, behaviourLogProbs: batch.behaviourLogProbs, actionMask, staleRows: kept.map((r) => r.weightsVersion < current), time: T, cap: 1 + config.clipHigh })
      : new Float32Array(B * T).fill(1);

  // 3. Reference log-probs (only when the KL term is on), laid out like the batch.
  let refLogProbs: Float32Array | null = null;
  if (run.reference) {
    const perSequence = await run.reference.completionLogProbs(kept.map((r) => ({ promptIds: r.promptTokenIds, completionIds: r.tokenIds })), temperature);
    refLogProbs = new Float32Array(B * T);
    perSequence.forEach((row, b) => refLogProbs!.set(row, b * T + batch.promptLengths[b]));
  }

  // 4. Scores from the reward service; the penalty for a rollout that never stopped.
  const { rewards: served, componentMeans } = await run.reward.score(
    kept.map((rollout, i) => {
      const source = promptOf.get(rollout.promptId)!;
      return { id: `${rollout.promptId}/${rollout.sampleIndex}#${i}`, prompt: source.prompt, completion: rollout.text, completionTokenIds: rollout.tokenIds, groundTruth: source.groundTruth };
    }),
  );
  const truncated = truncatedRollouts(kept);
  const rewards = penalizeMissingEos(served, truncated, config.missingEosPenalty);
  const metrics: Record<string, number> = {
    ...Object.fromEntries(Object.entries(componentMeans).map(([name, value]) => [`rewards/${name}`, value])),
    ...rolloutMetrics,
    ...truncationMetrics(truncated, batch.completionLengths),
    'rollout/completion_length': batch.completionLengths.reduce((a, b) => a + b, 0) / B,
    'rollout/logprob_diff': hostMaskedMean(absDiff, freshTokens),
    'rollout/logprob_diff_all': hostMaskedMean(absDiff, actionMask),
    'rollout/sampler_kl': hostMaskedMean(k3, actionMask),
    'rollout/importance_weight_mean': hostMaskedMean(weights, actionMask),
  };
  // The prompt as the policy saw it: its token ids decoded (chat template applied).
  const samples = spreadIndices(kept.length, SAMPLES_PER_STEP).map((i) => ({ prompt: run.tokenizer.decode(kept[i].promptTokenIds), completion: kept[i].text, reward: rewards[i] }));
  return { experience: { rollouts: kept, batch, oldLogProbs, refLogProbs, scores: rewards, truncated, importanceWeights: weights, metrics, samples }, rolloutMetrics };
}
