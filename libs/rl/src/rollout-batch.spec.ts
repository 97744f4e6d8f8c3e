import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { FinishReason } from '@posttrain/proto';
import { createModelConfig, forwardLogits, initModel, modelFromHfTensors, modelToHfTensors, tokenLogProbs, tokenValues, withScoreHead } from '@posttrain/model';
import type { LlamaModel } from '@posttrain/model';
import { buildRolloutBatch, criticValues, mapRowChunks, policyForward, selectRows } from './rollout-batch';
import type { RolloutBatch } from './rollout-batch';
import type { Rollout } from './rollout-types';
import { filterStaleRollouts, importanceWeights } from './stale-rollouts';
import { explainedVariance } from './ppo';

const rollout = (promptTokenIds: number[], tokenIds: number[], weightsVersion = 3, logprobs = tokenIds.map((_, i) => -0.1 * (i + 1))): Rollout => ({
  promptId: `p${promptTokenIds.join('.')}`,
  sampleIndex: 0,
  promptTokenIds,
  tokenIds,
  text: '',
  logprobs,
  finishReason: FinishReason.STOP,
  weightsVersion,
  sampler: 's',
});

describe('buildRolloutBatch / selectRows', () => {
  test('right-pads prompt + completion and marks exactly the completion tokens', () => {
    const b = buildRolloutBatch([rollout([1, 2], [7, 8, 9]), rollout([4], [5])], 0);
    assert.equal(b.batch, 2);
    assert.equal(b.time, 5);
    assert.deepEqual(b.inputIds, [
      [1, 2, 7, 8, 9],
      [4, 5, 0, 0, 0],
    ]);
    assert.deepEqual(b.attentionMask, [
      [1, 1, 1, 1, 1],
      [1, 1, 0, 0, 0],
    ]);
    assert.deepEqual(Array.from(b.actionMask), [0, 0, 1, 1, 1, 0, 1, 0, 0, 0]);
    // Sampler log-probs sit at their tokens: -0.1, -0.2, -0.3 for row 0, -0.1 for row 1.
    assert.deepEqual(Array.from(b.behaviourLogProbs).map((v) => Math.round(v * 10) / 10), [0, 0, -0.1, -0.2, -0.3, 0, -0.1, 0, 0, 0]);
    const s = selectRows(b, [1]);
    assert.equal(s.time, 2);
    assert.deepEqual(s.inputIds, [[4, 5]]);
    assert.deepEqual(Array.from(s.actionMask), [0, 1]);
    assert.throws(() => buildRolloutBatch([rollout([1], [])], 0), /the completion has no tokens/);
  });
});

describe('policyForward / criticValues', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });
  const config = createModelConfig({ vocabSize: 13, hiddenSize: 8, intermediateSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 1, maxPositionEmbeddings: 32, eosTokenId: 2, padTokenId: 0 });

  test('log-probs equal the model library tokenLogProbs at the same temperature, and entropies a plain-loop softmax, within 1e-5', () => {
    const model = initModel(config, { seed: 1 });
    const b = buildRolloutBatch([rollout([1, 2], [7, 8, 9]), rollout([4], [5])], 0);
    tf.dispose(Object.values(policyForward(model, b, 0.7))); // first call builds the model's cached tables
    const before = tf.memory().numTensors;
    const { logProbs, entropy } = policyForward(model, b, 0.7);
    const ours = logProbs.arraySync();
    const ent = entropy.arraySync();
    tf.dispose([logProbs, entropy]);
    assert.equal(tf.memory().numTensors, before, 'no leaked tensors');
    const ref = tf.tidy(() => tokenLogProbs(model, { inputIds: b.inputIds, attentionMask: b.attentionMask }, { temperature: 0.7 }).arraySync());
    for (let r = 0; r < 2; r++) for (let t = 0; t < b.time; t++) if (b.actionMask[r * b.time + t]) assert.ok(Math.abs(ours[r][t] - ref[r][t]) < 1e-5, `row ${r} col ${t}: ${ours[r][t]} vs ${ref[r][t]}`);
    // Entropy at column t is that of the distribution which predicted token t: from the logits at t - 1.
    const full = tf.tidy(() => {
      const z = tf.div(tf.tensor3d(forwardLogitsArray(model, b)), 0.7);
      return z.arraySync() as number[][][];
    });
    for (let r = 0; r < 2; r++) {
      for (let t = 1; t < b.time; t++) {
        if (!b.actionMask[r * b.time + t]) continue;
        const z = full[r][t - 1];
        const m = Math.max(...z);
        const e = z.map((v) => Math.exp(v - m));
        const s = e.reduce((x, y) => x + y, 0);
        const h = -e.reduce((acc, v) => acc + (v / s) * Math.log(v / s), 0);
        assert.ok(Math.abs(ent[r][t] - h) < 1e-5, `entropy row ${r} col ${t}: ${ent[r][t]} vs ${h}`);
      }
    }
    model.dispose();
  });

  test('critic values at column t are the value head one position earlier (the state the action was taken in)', () => {
    const base = initModel(config, { seed: 2 });
    const critic = withScoreHead(base, { seed: 3 });
    const b = buildRolloutBatch([rollout([1, 2], [7, 8, 9]), rollout([4], [5])], 0);
    const shifted = tf.tidy(() => criticValues(critic, b).arraySync());
    const raw = tf.tidy(() => tokenValues(critic, { inputIds: b.inputIds, attentionMask: b.attentionMask }).arraySync());
    for (let r = 0; r < 2; r++) {
      assert.equal(shifted[r][0], 0);
      for (let t = 1; t < b.time; t++) assert.equal(shifted[r][t], raw[r][t - 1]);
    }
    // Chunked evaluation gives the same numbers as one pass.
    const chunked = mapRowChunks(b, 1, (part) => criticValues(critic, part));
    for (let r = 0; r < 2; r++) for (let t = 0; t < b.time; t++) if (b.actionMask[r * b.time + t]) assert.ok(Math.abs(chunked[r * b.time + t] - shifted[r][t]) < 1e-6);
    base.dispose();
    critic.dispose();
  });

  test('a critic whose config says normalize_reward gives (head - mean) / std (tol 1e-5); without the flag its statistics change nothing', () => {
    const base = initModel(config, { seed: 2 });
    const critic = withScoreHead(base, { seed: 3 });
    const withConfig = (extra: object) => modelFromHfTensors({ ...critic.config, ...extra }, critic.heads, modelToHfTensors(critic), 'test critic');
    const normalized = withConfig({ rewardStats: { mean: 0.5, std: 2 }, normalizeReward: true });
    const recordedOnly = withConfig({ rewardStats: { mean: 0.5, std: 2 }, normalizeReward: false });
    const b = buildRolloutBatch([rollout([1, 2], [7, 8, 9]), rollout([4], [5])], 0);
    const raw = tf.tidy(() => criticValues(critic, b).arraySync());
    const got = tf.tidy(() => criticValues(normalized, b).arraySync());
    const same = tf.tidy(() => criticValues(recordedOnly, b).arraySync());
    for (let r = 0; r < 2; r++) {
      assert.equal(got[r][0], 0, 'column 0 (no state before it) stays 0');
      for (let t = 1; t < b.time; t++) {
        assert.ok(Math.abs(got[r][t] - (raw[r][t] - 0.5) / 2) < 1e-5, `row ${r} col ${t}: ${got[r][t]} vs ${(raw[r][t] - 0.5) / 2}`);
        assert.equal(same[r][t], raw[r][t]);
      }
    }
    for (const m of [base, critic, normalized, recordedOnly]) m.dispose();
  });
});

function forwardLogitsArray(model: LlamaModel, b: RolloutBatch): number[][][] {
  return tf.tidy(() => forwardLogits(model, { inputIds: b.inputIds, attentionMask: b.attentionMask }).arraySync());
}

describe('stale rollouts', () => {
  const rs = [rollout([1], [2], 5), rollout([1], [3], 4), rollout([1], [4], 2), rollout([1], [5], 5)];

  test('counts rollouts older than the current version and drops those beyond max_staleness', () => {
    // current 5, max 1: versions 5, 4 kept (4 is stale), 2 dropped (3 behind), 5 kept.
    const r = filterStaleRollouts(rs, 5, 1);
    assert.equal(r.stale, 2);
    assert.equal(r.dropped, 1);
    assert.deepEqual(r.kept.map((x) => x.tokenIds[0]), [2, 3, 5]);
    // Groups of 2 go whole: the group (2, 5) holds the version-2 rollout.
    const g = filterStaleRollouts(rs, 5, 1, 2);
    assert.equal(g.dropped, 2);
    assert.deepEqual(g.kept.map((x) => x.tokenIds[0]), [2, 3]);
    assert.equal(filterStaleRollouts(rs, 5, 3).dropped, 0);
    assert.throws(() => filterStaleRollouts(rs, 5, -1), /max_staleness: got -1/);
  });

  test('importance weights are min(exp(current - behaviour), cap) on stale rows only', () => {
    // Row 0 fresh, row 1 stale; T = 2; mask row 1 = [1, 1].
    const w = importanceWeights({
      currentLogProbs: Float32Array.from([-1, -1, -0.5, -2]),
      behaviourLogProbs: Float32Array.from([-3, -3, -1, -1]),
      actionMask: Float32Array.from([1, 1, 1, 1]),
      staleRows: [false, true],
      time: 2,
      cap: 1.28,
    });
    // row 1: exp(-0.5 - -1) = exp(0.5) = 1.6487 -> capped 1.28; exp(-2 - -1) = exp(-1) = 0.36788.
    assert.deepEqual(Array.from(w.subarray(0, 2)), [1, 1]);
    assert.ok(Math.abs(w[2] - 1.28) < 1e-6);
    assert.ok(Math.abs(w[3] - Math.exp(-1)) < 1e-6);
  });
});

test('explainedVariance: 1 - Var(y - v) / Var(y) over valid tokens', () => {
  // y = [1, 2, 3] (Var 2/3), v = [1, 2, 2] -> y - v = [0, 0, 1] (mean 1/3, Var 2/9) -> 1 - (2/9)/(2/3) = 2/3.
  const ev = explainedVariance(Float32Array.from([1, 2, 2, 9]), Float32Array.from([1, 2, 3, 9]), Float32Array.from([1, 1, 1, 0]));
  assert.ok(Math.abs(ev - 2 / 3) < 1e-6, String(ev));
});
