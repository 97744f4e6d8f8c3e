/**
 * Generalized Advantage Estimation (Schulman et al. 2016, "High-Dimensional
 * Continuous Control Using Generalized Advantage Estimation", eq. 16 and the
 * recursion below it), over a batch of variable-length responses:
 *   delta_t = r_t + gamma V_{t+1} - V_t
 *   A_t     = delta_t + gamma lambda A_{t+1}
 *   returns_t = A_t + V_t  (the value targets)
 * with V and A taken as 0 after the last valid token (the episode ends there,
 * as TRL and OpenRLHF do for right-padded responses).
 *
 * Masked positions are skipped: the recursion links each valid token to the
 * next valid token of the same row. For right-padded rows (1..1 0..0) that is
 * exactly the usual backward loop; a row with interior zeros (e.g. tool output
 * inside a multi-turn response) is treated as if those tokens were absent.
 * Masked positions get advantage 0 and return 0; an all-zero row is all 0.
 *
 * It runs as a plain loop on the host (one read of the inputs, one upload of
 * the result): the recursion is sequential in t and has no gradient, and T
 * small kernel launches would cost more than the loop.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertFloat, assertNumber, assertRank, assertShape } from './shape-checks';

export interface GaeArgs {
  /** [B,T] per-token rewards (e.g. from klPenalisedRewards). */
  readonly rewards: tf.Tensor2D;
  /** [B,T] critic values V(s_t) at rollout time. */
  readonly values: tf.Tensor2D;
  /** [B,T] 1 on response tokens, 0 on padding. Must be 0 or 1. */
  readonly actionMask: tf.Tensor2D;
  /** Discount, in [0, 1]. */
  readonly gamma: number;
  /** GAE lambda, in [0, 1]: 0 is one-step TD, 1 is Monte Carlo return minus V. */
  readonly lambda: number;
}

/** Advantages and value targets, both [B,T]; the caller owns (and disposes) them. */
export interface GaeEstimate {
  readonly advantages: tf.Tensor2D;
  readonly returns: tf.Tensor2D;
}

export function computeGae(args: GaeArgs): GaeEstimate {
  const fn = 'computeGae';
  const { rewards, values, actionMask, gamma, lambda } = args;
  assertRank(fn, 'rewards', rewards, 2, '[B,T]');
  assertFloat(fn, 'rewards', rewards);
  assertShape(fn, 'values', values, rewards.shape, 'rewards');
  assertFloat(fn, 'values', values);
  assertShape(fn, 'actionMask', actionMask, rewards.shape, 'rewards');
  assertNumber(fn, 'gamma', gamma, { min: 0, max: 1 });
  assertNumber(fn, 'lambda', lambda, { min: 0, max: 1 });
  const [batch, time] = rewards.shape;
  const r = rewards.dataSync();
  const v = values.dataSync();
  const m = actionMask.dataSync();
  const adv = new Float32Array(batch * time);
  const ret = new Float32Array(batch * time);
  for (let b = 0; b < batch; b++) {
    let nextValue = 0;
    let nextAdv = 0;
    for (let t = time - 1; t >= 0; t--) {
      const i = b * time + t;
      if (m[i] === 0) continue;
      if (m[i] !== 1) throw new Error(`${fn}: actionMask[${b}][${t}] must be 0 or 1, got ${m[i]}`);
      const delta = r[i] + gamma * nextValue - v[i];
      nextAdv = delta + gamma * lambda * nextAdv;
      nextValue = v[i];
      adv[i] = nextAdv;
      ret[i] = nextAdv + v[i];
    }
  }
  return { advantages: tf.tensor2d(adv, [batch, time]), returns: tf.tensor2d(ret, [batch, time]) };
}
