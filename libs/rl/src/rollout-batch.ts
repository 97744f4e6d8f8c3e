/**
 * Rollouts laid out for the trainer's forward passes, and the two forward
 * passes themselves (policy log-probs with entropy, critic values).
 *
 * Row b is prompt + completion, right-padded to T. Everything per token is a
 * [B,T] row-major array aligned to the *predicted* token: column t holds the
 * quantity for the action token ids[b,t], and actionMask[b,t] = 1 exactly on
 * completion tokens. So the policy log-prob at t is log pi(ids[t] | ids[<t]),
 * and the value at t is V(ids[<t]), the state in which the action was taken
 * (TRL's values from the hidden state one position earlier).
 */
import * as tf from '@tensorflow/tfjs-core';
import { entropyFromLogits, gatherLogProbs } from '@posttrain/algorithms';
import type { LlamaModel, TokenBatch } from '@posttrain/model';
import { forwardLogits, rewardNormalization, tokenValues } from '@posttrain/model';
import type { Rollout } from './rollout-types';

export interface RolloutBatch {
  readonly batch: number;
  readonly time: number;
  /** [B][T] token ids, right-padded with padId. */
  readonly inputIds: number[][];
  /** [B][T] 1 on prompt and completion tokens. */
  readonly attentionMask: number[][];
  /** [B*T] 1 on completion tokens. */
  readonly actionMask: Float32Array;
  /** [B*T] the sampler's log-probs at completion tokens, 0 elsewhere. */
  readonly behaviourLogProbs: Float32Array;
  /** Prompt length of each row (index of its first completion token). */
  readonly promptLengths: number[];
  /** Completion length of each row. */
  readonly completionLengths: number[];
}

/** Lays rollouts out as a RolloutBatch. A rollout with no completion token is rejected (nothing to train on). */
export function buildRolloutBatch(rollouts: readonly Rollout[], padId: number): RolloutBatch {
  if (rollouts.length === 0) throw new Error('buildRolloutBatch: no rollouts');
  rollouts.forEach((r, b) => {
    if (r.promptTokenIds.length === 0) throw new Error(`rollout ${b} (prompt ${r.promptId}, sample ${r.sampleIndex}): prompt_token_ids is empty`);
    if (r.tokenIds.length === 0) throw new Error(`rollout ${b} (prompt ${r.promptId}, sample ${r.sampleIndex}): the completion has no tokens`);
  });
  const B = rollouts.length;
  const T = Math.max(...rollouts.map((r) => r.promptTokenIds.length + r.tokenIds.length));
  const actionMask = new Float32Array(B * T);
  const behaviourLogProbs = new Float32Array(B * T);
  const inputIds: number[][] = [];
  const attentionMask: number[][] = [];
  rollouts.forEach((r, b) => {
    const seq = [...r.promptTokenIds, ...r.tokenIds];
    inputIds.push([...seq, ...new Array<number>(T - seq.length).fill(padId)]);
    attentionMask.push([...new Array<number>(seq.length).fill(1), ...new Array<number>(T - seq.length).fill(0)]);
    const p = r.promptTokenIds.length;
    for (let k = 0; k < r.tokenIds.length; k++) {
      actionMask[b * T + p + k] = 1;
      behaviourLogProbs[b * T + p + k] = r.logprobs[k];
    }
  });
  return {
    batch: B,
    time: T,
    inputIds,
    attentionMask,
    actionMask,
    behaviourLogProbs,
    promptLengths: rollouts.map((r) => r.promptTokenIds.length),
    completionLengths: rollouts.map((r) => r.tokenIds.length),
  };
}

/** Rows `rows` of a batch (a minibatch), cut to their longest row. */
export function selectRows(batch: RolloutBatch, rows: readonly number[]): RolloutBatch {
  const T0 = batch.time;
  const T = Math.max(...rows.map((b) => batch.promptLengths[b] + batch.completionLengths[b]));
  const pick = (flat: Float32Array) => {
    const out = new Float32Array(rows.length * T);
    rows.forEach((b, i) => out.set(flat.subarray(b * T0, b * T0 + T), i * T));
    return out;
  };
  return {
    batch: rows.length,
    time: T,
    inputIds: rows.map((b) => batch.inputIds[b].slice(0, T)),
    attentionMask: rows.map((b) => batch.attentionMask[b].slice(0, T)),
    actionMask: pick(batch.actionMask),
    behaviourLogProbs: pick(batch.behaviourLogProbs),
    promptLengths: rows.map((b) => batch.promptLengths[b]),
    completionLengths: rows.map((b) => batch.completionLengths[b]),
  };
}

/** Rows `rows` of a [B*T0] array, each cut to T columns. */
export function selectRowsOf(flat: Float32Array, time0: number, rows: readonly number[], time: number): Float32Array {
  const out = new Float32Array(rows.length * time);
  rows.forEach((b, i) => out.set(flat.subarray(b * time0, b * time0 + time), i * time));
  return out;
}

function tokenBatch(batch: RolloutBatch): TokenBatch {
  return { inputIds: batch.inputIds, attentionMask: batch.attentionMask };
}

/** Moves column t to t + 1 (column 0 becomes 0): "predicts the next token" -> "aligned to the predicted token". */
function shiftRight(x: tf.Tensor2D): tf.Tensor2D {
  const [B, T] = x.shape;
  if (T === 1) return tf.zerosLike(x);
  return tf.concat([tf.zeros([B, 1]), tf.slice(x, [0, 0], [B, T - 1])], 1) as tf.Tensor2D;
}

/**
 * Policy log-probs and entropies [B,T] under softmax(logits / temperature),
 * aligned to the predicted token (0 in column 0). Differentiable: call inside
 * tf.tidy / tf.variableGrads. Zero them outside actionMask before use.
 */
export function policyForward(model: LlamaModel, batch: RolloutBatch, temperature: number): { logProbs: tf.Tensor2D; entropy: tf.Tensor2D } {
  const { batch: B, time: T } = batch;
  const next = new Int32Array(B * T); // label at t = the token t + 1 (0 in the last column, masked later)
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) next[b * T + t] = batch.inputIds[b][t + 1];
  return tf.tidy(() => {
    const logits = forwardLogits(model, tokenBatch(batch)); // (B,T,V)
    const labels = tf.tensor2d(next, [B, T], 'int32');
    const logProbs = shiftRight(gatherLogProbs(logits, labels, { temperature })); // (B,T)
    const entropy = shiftRight(entropyFromLogits(logits, { temperature })); // (B,T)
    return { logProbs, entropy };
  });
}

/**
 * Critic values [B,T]: column t is V(ids[<t]), the value of the state the action ids[t] was taken in. Differentiable.
 * A critic whose config.json says normalize_reward (one initialised from a reward model that serves
 * standardised scores) gives (head - mean) / std, on the scale of the rewards it predicts (as OpenRLHF's
 * CriticModel).
 */
export function criticValues(critic: LlamaModel, batch: RolloutBatch): tf.Tensor2D {
  const norm = rewardNormalization(critic.config);
  return tf.tidy(() => {
    const head = tokenValues(critic, tokenBatch(batch));
    return shiftRight(norm ? tf.div(tf.sub(head, norm.mean), norm.std) : head);
  });
}

/** Runs `fn` over row chunks of at most `chunk` rows and concatenates the [rows*T] outputs (no gradient). */
export function mapRowChunks(batch: RolloutBatch, chunk: number, fn: (part: RolloutBatch) => tf.Tensor2D): Float32Array {
  const out = new Float32Array(batch.batch * batch.time);
  for (let start = 0; start < batch.batch; start += chunk) {
    const rows = Array.from({ length: Math.min(chunk, batch.batch - start) }, (_, i) => start + i);
    const part = selectRows(batch, rows);
    const t = fn(part);
    const data = t.dataSync() as Float32Array;
    t.dispose();
    rows.forEach((b, i) => out.set(data.subarray(i * part.time, (i + 1) * part.time), b * batch.time));
  }
  return out;
}
