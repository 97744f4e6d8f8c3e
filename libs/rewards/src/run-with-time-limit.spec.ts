import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runWithTimeLimit, TimeLimitExceededError } from './run-with-time-limit';

describe('runWithTimeLimit', () => {
  test('returns the result of a quick computation', () => {
    assert.deepEqual(runWithTimeLimit(() => [1, 2, 3].map((x) => x * 2), 1000), [2, 4, 6]);
  });
  test('passes errors through unchanged (same class, same object)', () => {
    const boom = new RangeError('boom');
    assert.throws(
      () =>
        runWithTimeLimit(() => {
          throw boom;
        }, 1000),
      (err: unknown) => err === boom,
    );
  });
  test('stops a catastrophically backtracking regex', () => {
    // ^(a+)+$ on 30 a's and a b tries ~2^30 splits: minutes unless stopped.
    const started = Date.now();
    assert.throws(() => runWithTimeLimit(() => /^(a+)+$/.test(`${'a'.repeat(30)}b`), 50), (err: unknown) => err instanceof TimeLimitExceededError && err.limitMs === 50);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 2000, `stopped after ${elapsed} ms`);
    // And the shared context still works afterwards.
    assert.equal(runWithTimeLimit(() => 'ok', 1000), 'ok');
  });
});
