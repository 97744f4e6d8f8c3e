/**
 * Rollouts that ran into the length limit (finish reason LENGTH: no end of
 * sequence, stop token or stop string before max_completion_length). A reward
 * model scores such a reply as if it had ended, since the chat template closes
 * the turn for it, and a rule-based reward rarely finds an answer in it; TRL's
 * two remedies:
 *
 * - missing_eos_penalty (PPOConfig, RLOOConfig): the penalty is subtracted
 *   from each such rollout's reward, so the policy learns to finish;
 * - mask_truncated_completions (GRPOConfig, DAPO's overlong filtering): they
 *   count in their group's advantages but none of their tokens is in the loss.
 */
import { FinishReason } from '@posttrain/proto';
import type { Rollout } from './rollout-types';

/** True for each rollout that stopped at the length limit rather than at a stop. */
export function truncatedRollouts(rollouts: readonly Pick<Rollout, 'finishReason'>[]): boolean[] {
  return rollouts.map((r) => r.finishReason === FinishReason.LENGTH);
}

/** The rewards with `penalty` subtracted from those of truncated rollouts (a new array; null penalty: a copy). */
export function penalizeMissingEos(scores: Float32Array, truncated: readonly boolean[], penalty: number | null): Float32Array {
  if (truncated.length !== scores.length) throw new Error(`penalizeMissingEos: ${scores.length} scores but ${truncated.length} rollouts`);
  const out = Float32Array.from(scores);
  if (penalty === null || penalty === 0) return out;
  truncated.forEach((t, i) => {
    if (t) out[i] -= penalty;
  });
  return out;
}

/** The action mask [B*T] with the rows of truncated rollouts zeroed: what the loss sees under mask_truncated_completions. */
export function maskTruncatedRows(actionMask: Float32Array, truncated: readonly boolean[], time: number): Float32Array {
  if (truncated.length * time !== actionMask.length) throw new Error(`maskTruncatedRows: a mask of ${actionMask.length} entries is not ${truncated.length} rows of ${time}`);
  const out = Float32Array.from(actionMask);
  truncated.forEach((t, b) => {
    if (t) out.fill(0, b * time, (b + 1) * time);
  });
  return out;
}

/**
 * rollout/clipped_ratio (the fraction that hit the limit; TRL's completions/clipped_ratio)
 * and rollout/mean_terminated_length (tokens of those that stopped; 0 when none did).
 */
export function truncationMetrics(truncated: readonly boolean[], completionLengths: readonly number[]): Record<string, number> {
  let clipped = 0;
  let terminated = 0;
  let terminatedTokens = 0;
  truncated.forEach((t, i) => {
    if (t) clipped++;
    else {
      terminated++;
      terminatedTokens += completionLengths[i];
    }
  });
  return {
    'rollout/clipped_ratio': truncated.length === 0 ? 0 : clipped / truncated.length,
    'rollout/mean_terminated_length': terminated === 0 ? 0 : terminatedTokens / terminated,
  };
}
