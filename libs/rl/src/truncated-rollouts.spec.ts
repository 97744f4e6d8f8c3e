import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FinishReason } from '@posttrain/proto';
import { maskTruncatedRows, penalizeMissingEos, truncatedRollouts, truncationMetrics } from './truncated-rollouts';

describe('truncated rollouts', () => {
  test('a rollout is truncated when it finished at the length limit, not at a stop (nor aborted)', () => {
    assert.deepEqual(truncatedRollouts([{ finishReason: FinishReason.STOP }, { finishReason: FinishReason.LENGTH }, { finishReason: FinishReason.ABORT }]), [false, true, false]);
  });

  test('missing_eos_penalty comes off the truncated ones only (by hand), and the input is left as it was', () => {
    const scores = Float32Array.from([1, 0.5, -0.25, 2]);
    const out = penalizeMissingEos(scores, [false, true, true, false], 0.5);
    assert.deepEqual(Array.from(out), [1, 0, -0.75, 2]);
    assert.deepEqual(Array.from(scores), [1, 0.5, -0.25, 2]);
    assert.deepEqual(Array.from(penalizeMissingEos(scores, [true, true, true, true], null)), [1, 0.5, -0.25, 2]);
    assert.throws(() => penalizeMissingEos(scores, [true], 1), /4 scores but 1 rollouts/);
  });

  test('mask_truncated_completions zeroes the whole row of each truncated rollout in the [B*T] mask', () => {
    // B = 3 rows of T = 4; row 1 truncated.
    const mask = Float32Array.from([0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0]);
    assert.deepEqual(Array.from(maskTruncatedRows(mask, [false, true, false], 4)), [0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0]);
    assert.equal(mask[5], 1, 'the input mask is not changed');
    assert.throws(() => maskTruncatedRows(mask, [true, false], 4), /12 entries is not 2 rows of 4/);
  });

  test('clipped ratio and mean terminated length (by hand)', () => {
    assert.deepEqual(truncationMetrics([true, false, false, true], [8, 3, 5, 8]), { 'rollout/clipped_ratio': 0.5, 'rollout/mean_terminated_length': 4 });
    assert.deepEqual(truncationMetrics([true, true], [8, 8]), { 'rollout/clipped_ratio': 1, 'rollout/mean_terminated_length': 0 });
  });
});
