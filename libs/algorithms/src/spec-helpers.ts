/**
 * Helpers for this package's tests only (not exported from the index):
 * cpu backend setup, float comparisons with an explicit tolerance, leak checks.
 */
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's node entry registers no gradients; the application does that once
// (libs/backend), the tests here do it themselves.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import assert from 'node:assert/strict';

/** Selects the deterministic cpu backend; call from a `before` hook. */
export async function useCpuBackend(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
}

/** |actual - expected| <= tol (absolute), with a message naming what was compared. */
export function assertClose(actual: number, expected: number, tol: number, what = 'value'): void {
  assert.ok(
    Math.abs(actual - expected) <= tol || (Number.isNaN(expected) && Number.isNaN(actual)),
    `${what}: got ${actual}, expected ${expected} (tol ${tol})`,
  );
}

/** Element-wise assertClose over a tensor (or array) and a nested/flat array of expected values. */
export function assertAllClose(actual: tf.Tensor | ArrayLike<number>, expected: number[] | number[][], tol: number, what = 'tensor'): void {
  const got = Array.from(actual instanceof tf.Tensor ? actual.dataSync() : actual);
  const want = (expected as (number | number[])[]).flat();
  assert.equal(got.length, want.length, `${what}: got ${got.length} values, expected ${want.length}`);
  got.forEach((g, i) => assertClose(g, want[i], tol, `${what}[${i}]`));
}

/** Runs `body` and asserts it leaves no new tensors behind (the caller disposes what it keeps inside body). */
export function assertNoLeaks(body: () => void, what = 'call'): void {
  const before = tf.memory().numTensors;
  body();
  const after = tf.memory().numTensors;
  assert.equal(after, before, `${what} leaked ${after - before} tensor(s)`);
}
