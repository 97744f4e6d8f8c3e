import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyBudget } from './latency-budget';

test('LatencyBudget: slack x the slowest recent cost per unit x the units, doubled per retry, within [floor, cap]', () => {
  const b = new LatencyBudget({ initialMsPerUnit: 10, slack: 4, floorMs: 100, capMs: 10_000, window: 3 });
  assert.equal(b.deadlineMs(50), 2_000, 'initial: 4 x 10 ms x 50');
  assert.equal(b.deadlineMs(1), 100, 'floor');
  assert.equal(b.deadlineMs(1_000), 10_000, 'cap');
  b.observe(100, 50); // 2 ms per unit
  assert.equal(b.deadlineMs(50), 400);
  b.observe(300, 50); // 6 ms per unit: the slowest recent one counts
  assert.equal(b.deadlineMs(50), 1_200);
  assert.equal(b.deadlineMs(50, 2), 4_800, 'two timeouts: 4x');
  b.observe(50, 50);
  b.observe(50, 50);
  b.observe(50, 50); // the 6 ms observation has left the window of 3
  assert.equal(b.deadlineMs(50), 200);
  assert.throws(() => new LatencyBudget({ initialMsPerUnit: 0, slack: 4, floorMs: 1, capMs: 2 }), /initialMsPerUnit: got 0, expected a number > 0/);
});
