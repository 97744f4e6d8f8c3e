// A decoding step's attention on wasm: the fused native kernel against the tfjs
// formulation it replaces (groupedAttention, what plain wasm runs), the cache
// extended in place without disturbing older caches, and whole-model decoding
// (GQA, one kv head, sliding window, Qwen3's q/k norm, tied embeddings) against
// recomputation and plain wasm. Skipped where the native addon is absent,
// unless POSTTRAIN_NATIVE=1, which makes its absence a failure.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, nativeKernelsActive, setNativeKernelsEnabled } from '@posttrain/backend';
import { loadNativeKernels } from '@posttrain/native-kernels';
import { attentionBias, cacheColumns, ropeTables, type AttentionDims } from './attention';
import { decodeStepAttention, grownCapacity } from './decode-attention';
import { createModelConfig, type ModelShape } from './model-config';
import { modelFromHfTensors } from './llama-model';
import { generate } from './generate';
import { makeTestWeights } from './test-reference';

const { addon, status } = loadNativeKernels();
const skip = addon === null && process.env.POSTTRAIN_NATIVE !== '1' ? `native addon absent: ${status.reason}` : false;

/** Both paths run off the same native switch; `plain` runs `f` with the native kernels off. */
function plain<T>(f: () => T): T {
  setNativeKernelsEnabled(false);
  try {
    return f();
  } finally {
    setNativeKernelsEnabled(true);
  }
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const bound = tol * Math.max(1, Math.abs(expected[i]));
    if (!(Math.abs(actual[i] - expected[i]) <= bound)) assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tolerance ${bound})`);
  }
}

/** One step's operands: rows of B tokens after P cached columns (every third key of a row hidden, as padding is). */
function stepOperands(d: AttentionDims, P: number, seed: number) {
  const { B, H, G, E } = d;
  const keyMask = new Uint8Array(B * (P + 1)).fill(1);
  for (let b = 0; b < B; b++) for (let k = 0; k < P; k++) if ((k + b) % 3 === 2) keyMask[b * (P + 1) + k] = 0;
  const positions = Int32Array.from({ length: B }, (_, b) => P + b);
  const keyPositions = Int32Array.from({ length: B * (P + 1) }, (_, i) => i % (P + 1) + Math.floor(i / (P + 1)));
  const tokens = { ids: new Int32Array(B), batch: B, length: 1, mask: new Uint8Array(B).fill(1), positions };
  return {
    q: tf.randomUniform([B, H * E], -1, 1, 'float32', seed) as tf.Tensor2D,
    k: tf.randomUniform([B, G * E], -1, 1, 'float32', seed + 1) as tf.Tensor2D,
    v: tf.randomUniform([B, G * E], -1, 1, 'float32', seed + 2) as tf.Tensor2D,
    rope: ropeTables(positions, E, 10000),
    bias: attentionBias(tokens, keyMask, keyPositions, P + 1, null),
    past: { keys: tf.randomUniform([B, G, P, E], -1, 1, 'float32', seed + 3) as tf.Tensor4D, values: tf.randomUniform([B, G, P, E], -1, 1, 'float32', seed + 4) as tf.Tensor4D, length: P },
  };
}

describe('decode-step attention on wasm: fused native kernel vs tfjs ops', { skip }, () => {
  before(async () => {
    if (addon === null) assert.fail(`POSTTRAIN_NATIVE=1 but the native addon is absent: ${status.reason}`);
    await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
    assert.equal(nativeKernelsActive(), true);
  });

  const cases: [AttentionDims, number][] = [
    [{ B: 1, T: 1, H: 1, G: 1, E: 2 }, 0], // cache length 1 after the step, head dim 2
    [{ B: 1, T: 1, H: 4, G: 4, E: 8 }, 1],
    [{ B: 3, T: 1, H: 6, G: 2, E: 6 }, 7], // GQA groups of 3
    [{ B: 2, T: 1, H: 8, G: 1, E: 4 }, 12], // one kv head
    [{ B: 8, T: 1, H: 4, G: 4, E: 64 }, 40],
  ];
  for (const [d, P] of cases) {
    test(`B ${d.B}, H ${d.H}, G ${d.G}, E ${d.E}, ${P} cached: same output and cache as the tfjs ops`, () => {
      tf.tidy(() => {
        const x = stepOperands(d, P, 100 + P);
        const scale = 1 / Math.sqrt(d.E);
        const fused = decodeStepAttention(x.q, x.k, x.v, x.rope, x.past, x.bias, d, scale);
        const ref = plain(() => decodeStepAttention(x.q, x.k, x.v, x.rope, x.past, x.bias, d, scale));
        assert.deepEqual(ref.keys.shape, [d.B, d.G, P + 1, d.E], 'the tfjs ops grow the cache by concatenation');
        assert.deepEqual(fused.keys.shape, [d.B, d.G, grownCapacity(P), d.E], 'the fused step copies an exact-length cache into one with spare columns');
        // Same BLAS products, softmax exponentials differ in the last bits: 1e-5 relative to max(1, |ref|).
        assertClose(fused.out.dataSync(), ref.out.dataSync(), 1e-5, 'out');
        // RoPE is computed in the same float32 order: the cached columns agree exactly.
        assert.deepEqual(cacheColumns(fused.keys, P + 1).dataSync(), ref.keys.dataSync(), 'keys');
        assert.deepEqual(cacheColumns(fused.values, P + 1).dataSync(), ref.values.dataSync(), 'values');
      });
    });
  }

  test('steps continue in place; an older cache keeps its columns, and a second step from it branches into a copy', () => {
    tf.tidy(() => {
      const d = { B: 2, T: 1, H: 4, G: 2, E: 4 };
      const scale = 0.5;
      const x = stepOperands(d, 3, 7);
      const step1 = decodeStepAttention(x.q, x.k, x.v, x.rope, x.past, x.bias, d, scale);
      const c1 = { keys: step1.keys, values: step1.values, length: 4 };
      const before = cacheColumns(c1.keys, 4).dataSync().slice();
      // Step 2 continues in place: the same buffer, a tensor of its own.
      const y = stepOperands(d, 4, 9);
      const step2 = decodeStepAttention(y.q, y.k, y.v, y.rope, c1, y.bias, d, scale);
      assert.notEqual(step2.keys, c1.keys);
      assert.equal(step2.keys.dataId, c1.keys.dataId, 'the column was written into the old buffer');
      assert.deepEqual(cacheColumns(c1.keys, 4).dataSync(), before, 'the older cache still reads its own columns');
      // Step 2' from the same older cache must not overwrite step 2's column: it branches into a copy.
      const z = stepOperands(d, 4, 11);
      const branch = decodeStepAttention(z.q, z.k, z.v, z.rope, c1, z.bias, d, scale);
      assert.notEqual(branch.keys.dataId, c1.keys.dataId);
      const ref2 = plain(() => decodeStepAttention(y.q, y.k, y.v, y.rope, c1, y.bias, d, scale));
      assert.deepEqual(cacheColumns(step2.keys, 5).dataSync(), ref2.keys.dataSync(), 'step 2 kept its column');
      assertClose(step2.out.dataSync(), ref2.out.dataSync(), 1e-5, 'step 2 out');
      const refBranch = plain(() => decodeStepAttention(z.q, z.k, z.v, z.rope, c1, z.bias, d, scale));
      assertClose(branch.out.dataSync(), refBranch.out.dataSync(), 1e-5, 'branch out');
      assert.deepEqual(cacheColumns(branch.values, 5).dataSync(), refBranch.values.dataSync(), 'branch values');
      // Disposing the older cache leaves the newer one (which shares its buffer) readable.
      tf.dispose([step1.keys, step1.values]);
      assert.deepEqual(cacheColumns(step2.keys, 5).dataSync(), ref2.keys.dataSync());
    });
  });

  test('a one-token step insists on one token per row', () => {
    const d = { B: 1, T: 2, H: 1, G: 1, E: 2 };
    assert.throws(() => tf.tidy(() => {
      const x = stepOperands({ ...d, T: 1 }, 1, 3);
      decodeStepAttention(x.q, x.k, x.v, x.rope, x.past, x.bias, d, 1);
    }), /a decoding step has one token per row, got 2/);
  });

  const shapes: [string, ModelShape & { slidingWindow?: number }][] = [
    ['qwen2, GQA 4/2, q/k/v biases', { modelType: 'qwen2', numHeads: 4, numKvHeads: 2 }],
    ['llama, one kv head, tied embeddings', { modelType: 'llama', numHeads: 4, numKvHeads: 1, tieWordEmbeddings: true }],
    ['mistral, sliding window 3', { modelType: 'mistral', numHeads: 4, numKvHeads: 2, slidingWindow: 3 }],
    ['qwen3, q/k RMSNorm', { modelType: 'qwen3', numHeads: 4, numKvHeads: 2 }],
  ];
  for (const [name, { slidingWindow, ...shape }] of shapes) {
    test(`whole-model greedy decoding, ${name}: cache (fused) = recomputation = plain wasm's cache (tol 1e-4), past the first regrowth, no leaks`, () => {
      const base = createModelConfig({ vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 2, maxPositionEmbeddings: 64, ...shape });
      const config = slidingWindow === undefined ? base : { ...base, slidingWindow };
      const heads = { lm: true, score: false };
      const model = modelFromHfTensors(config, heads, makeTestWeights(config, heads, 5, 0.5), name);
      const prompts = [[3, 9, 14, 1, 7], [22, 5], [8]];
      // 40 new tokens: the prompt's 5 columns grow to 37, then again past them.
      const run = (useCache: boolean) => {
        const logits: Float32Array[] = [];
        const out = generate(model, prompts, { maxNewTokens: 40, temperature: 0, stopTokens: [], useCache, onStepLogits: (_, l) => logits.push(l.slice()) });
        return { tokens: out.map((c) => c.tokens), logits };
      };
      const fused = run(true);
      const tensors = tf.memory().numTensors;
      run(true);
      assert.equal(tf.memory().numTensors, tensors, 'no tensor leaks');
      for (const [what, ref] of [['recomputation', run(false)], ['plain wasm with a cache', plain(() => run(true))]] as const) {
        assert.deepEqual(fused.tokens, ref.tokens, `tokens vs ${what}`);
        fused.logits.forEach((l, s) => assertClose(l, ref.logits[s], 1e-4, `step ${s} logits vs ${what}`));
      }
      model.dispose();
    });
  }
});
