import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './index';
import { values } from './mat-mul-reference';


/** |x - ref| <= 1e-4 * max(|ref|, 1) element-wise. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = 1e-4 * Math.max(Math.abs(expected[i]), 1);
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

describe('UnsortedSegmentSum on wasm and the gather gradient', () => {
  before(async () => {
    await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
  });

  test('sums rows by segment id (hand-checked), dropping negative ids', () => {
    const x = tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]);
    const ids = tf.tensor1d([2, 0, 2, -1], 'int32');
    const out = tf.unsortedSegmentSum(x, ids, 3);
    // segment 0: row 1 = [3,4]; segment 1: nothing; segment 2: rows 0+2 = [6,8]; row 3 dropped.
    assert.deepEqual(out.shape, [3, 2]);
    assert.deepEqual(Array.from(out.dataSync()), [3, 4, 0, 0, 6, 8]);
    tf.dispose([x, ids, out]);
  });

  test('rejects an id >= numSegments, naming it', () => {
    const x = tf.tensor2d([[1, 2]]);
    const ids = tf.tensor1d([5], 'int32');
    const before = tf.memory().numTensors;
    assert.throws(() => tf.unsortedSegmentSum(x, ids, 3), /segmentIds\[0\] = 5 is not in \[0, 3\)/);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, ids]);
  });

  for (const axis of [0, 1]) {
    test(`gradient of tf.gather(axis=${axis}) matches a scatter-add loop and the cpu backend`, () => {
      const [rows, cols] = [10, 6];
      const table = values(rows * cols, 11);
      const idx = [1, 3, 1, 9, 0, 3]; // repeated ids must accumulate
      const size = axis === 0 ? rows : cols;
      const indices = idx.map((i) => i % size);
      const gatheredShape = axis === 0 ? [2, 3, cols] : [rows, 2, 3];
      const r = values(gatheredShape.reduce((p, d) => p * d, 1), 12);
      // L = sum(gather(T, I) * R): dL/dT[row, col] = sum of R over the positions that read T[row, col].
      const expected = new Float64Array(rows * cols);
      if (axis === 0) {
        indices.forEach((row, p) => {
          for (let c = 0; c < cols; c++) expected[row * cols + c] += r[p * cols + c];
        });
      } else {
        for (let row = 0; row < rows; row++) {
          indices.forEach((col, p) => {
            expected[row * cols + col] += r[row * indices.length + p];
          });
        }
      }
      const run = (backend: string): Float32Array => {
        const prev = tf.getBackend();
        tf.setBackend(backend);
        try {
          return tf.tidy(() => {
            const t = tf.tensor2d(table, [rows, cols]);
            const ids = tf.tensor2d(indices, [2, 3], 'int32');
            const rt = tf.tensor(r, gatheredShape);
            const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.gather(x, ids, axis), rt)))(t);
            return g.dataSync() as Float32Array;
          });
        } finally {
          tf.setBackend(prev);
        }
      };
      const before = tf.memory().numTensors;
      const wasm = run('wasm');
      assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
      assertClose(wasm, expected, 'wasm vs loop');
      assertClose(wasm, run('cpu'), 'wasm vs cpu');
    });
  }
});
