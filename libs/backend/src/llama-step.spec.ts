import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './index';
import { buildLlamaStep, type LlamaStepConfig } from './llama-step';

// Every kernel a Llama-style training step needs (gather, RMSNorm's mean of
// squares and rsqrt, RoPE's slice/concat/mul, transposes, batched q@kᵀ and
// att@v, softmax, SiLU's sigmoid, logSoftmax, oneHot, Adam's ops) must run on
// wasm with its gradient and agree with the cpu backend.
const tiny: LlamaStepConfig = { vocab: 32, dim: 16, heads: 2, hidden: 24, layers: 2, batch: 2, seq: 8 };

/** ||a - b|| / ||b|| over a whole tensor. */
function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

function onBackend<T>(name: string, f: () => T): T {
  const prev = tf.getBackend();
  tf.setBackend(name);
  try {
    return f();
  } finally {
    tf.setBackend(prev);
  }
}

describe('Llama-shaped training step on wasm', () => {
  before(async () => {
    await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
  });

  test('loss and every parameter gradient agree with the cpu backend (relative L2 error <= 1e-4)', () => {
    const run = (backend: string) =>
      onBackend(backend, () => {
        const s = buildLlamaStep(tiny, 7);
        try {
          return s.lossAndGrads();
        } finally {
          s.dispose();
        }
      });
    const wasm = run('wasm');
    const cpu = run('cpu');
    // Untrained model: the loss is near ln(vocab) = ln 32 = 3.47.
    assert.ok(Math.abs(cpu.loss - Math.log(32)) < 0.5, `cpu loss ${cpu.loss}`);
    assert.ok(Math.abs(wasm.loss - cpu.loss) <= 1e-4 * cpu.loss, `loss wasm ${wasm.loss} vs cpu ${cpu.loss}`);
    assert.equal(wasm.grads.length, cpu.grads.length);
    wasm.grads.forEach((g, i) => {
      const e = relErr(g, cpu.grads[i]);
      assert.ok(e <= 1e-4, `gradient ${i}: relative error ${e}`);
    });
  });

  test('Adam steps lower the loss and leak no tensors', () => {
    const s = buildLlamaStep(tiny, 3);
    const first = s.step();
    const tensors = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 5; i++) last = s.step();
    assert.equal(tf.memory().numTensors, tensors, 'tensor count stable across steps');
    assert.ok(last < first, `loss went from ${first} to ${last}`);
    s.dispose();
  });
});
