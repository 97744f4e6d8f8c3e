import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { marginalGains } from './assess-claims';
import { softmaxEntropy } from './model-evaluation';

describe('marginalGains', () => {
  test('accuracy gain per added example between consecutive sizes', () => {
    // (0.4 - 0.1) / (100 - 30) = 0.3 / 70; (0.5 - 0.4) / (300 - 100) = 0.1 / 200
    const g = marginalGains([
      { sftExamples: 30, accuracy: 0.1 },
      { sftExamples: 100, accuracy: 0.4 },
      { sftExamples: 300, accuracy: 0.5 },
    ]);
    assert.equal(g.length, 2);
    assert.ok(Math.abs(g[0] - 0.3 / 70) < 1e-15);
    assert.ok(Math.abs(g[1] - 0.1 / 200) < 1e-15);
    assert.throws(() => marginalGains([{ sftExamples: 30, accuracy: 0 }, { sftExamples: 30, accuracy: 1 }]), /sizes must ascend/);
  });
});

describe('softmaxEntropy', () => {
  test('uniform logits give ln V; logits [0, ln 3] give p = [1/4, 3/4]', () => {
    // tolerance 1e-12: float64 arithmetic throughout
    assert.ok(Math.abs(softmaxEntropy([5, 5, 5, 5, 5], 0, 5) - Math.log(5)) < 1e-12);
    const h = -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75)); // 0.5623351446...
    assert.ok(Math.abs(softmaxEntropy([9, 9, 0, Math.log(3)], 2, 2) - h) < 1e-12);
  });

  test('agrees with a plain-loop reference on random logits (offset rows, large values)', () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 40 - 20;
    const V = 11;
    const logits = Array.from({ length: 3 * V }, rand).map((x, i) => (i >= 2 * V ? x + 500 : x));
    for (let r = 0; r < 3; r++) {
      const row = logits.slice(r * V, (r + 1) * V);
      const m = Math.max(...row);
      const p = row.map((x) => Math.exp(x - m));
      const z = p.reduce((a, b) => a + b, 0);
      const ref = -p.reduce((a, q) => a + (q / z) * Math.log(q / z), 0);
      assert.ok(Math.abs(softmaxEntropy(logits, r * V, V) - ref) < 1e-10, `row ${r}: ${softmaxEntropy(logits, r * V, V)} vs ${ref}`);
    }
  });
});
