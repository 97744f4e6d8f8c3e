import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { batchMatMul, matMul2d } from './mat-mul';
import { embedTokens } from './embed-tokens';
import { createModelConfig } from './model-config';
import { modelFromHfTensors } from './llama-model';
import { makeTestWeights } from './test-reference';
import { checkGradients, GRADIENT_PROBES } from './gradient-check';

before(async () => {
  await tf.setBackend('cpu');
});

const seq = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.sin(i * k + 1));

describe('products with explicit-transpose gradients', () => {
  test('matMul2d: value and gradients match plain loops (tol 1e-5)', () => {
    const [M, K, N] = [3, 4, 5];
    const a = seq(M * K, 0.7);
    const b = seq(K * N, 1.3);
    const dy = seq(M * N, 0.4); // upstream gradient: loss = sum(y * dy)
    const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matMul2d(x as tf.Tensor2D, y as tf.Tensor2D), tf.tensor2d(dy, [M, N]))) as tf.Scalar;
    const [ga, gb] = tf.grads(f)([tf.tensor2d(a, [M, K]), tf.tensor2d(b, [K, N])]);
    // dL/dA[m][k] = Σ_n dy[m][n] B[k][n]; dL/dB[k][n] = Σ_m A[m][k] dy[m][n]
    const wantA: number[] = [];
    for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) { let s = 0; for (let n = 0; n < N; n++) s += dy[m * N + n] * b[k * N + n]; wantA.push(s); }
    const wantB: number[] = [];
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) { let s = 0; for (let m = 0; m < M; m++) s += a[m * K + k] * dy[m * N + n]; wantB.push(s); }
    Array.from(ga.dataSync()).forEach((x, i) => assert.ok(Math.abs(x - wantA[i]) < 1e-5));
    Array.from(gb.dataSync()).forEach((x, i) => assert.ok(Math.abs(x - wantB[i]) < 1e-5));
    tf.dispose([ga, gb]);
    assert.throws(() => matMul2d(tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([4, 5]) as tf.Tensor2D), /shapes \[2,3\] and \[4,5\] do not chain/);
  });

  test('batchMatMul: gradients match plain loops per batch (tol 1e-5)', () => {
    const [Bt, M, K, N] = [2, 3, 2, 4];
    const a = seq(Bt * M * K, 0.9);
    const b = seq(Bt * K * N, 0.3);
    const dy = seq(Bt * M * N, 1.1);
    const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(batchMatMul(x as tf.Tensor3D, y as tf.Tensor3D), tf.tensor3d(dy, [Bt, M, N]))) as tf.Scalar;
    const [ga, gb] = tf.grads(f)([tf.tensor3d(a, [Bt, M, K]), tf.tensor3d(b, [Bt, K, N])]);
    const A = ga.dataSync();
    const B = gb.dataSync();
    for (let t = 0; t < Bt; t++) {
      for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) {
        let s = 0;
        for (let n = 0; n < N; n++) s += dy[t * M * N + m * N + n] * b[t * K * N + k * N + n];
        assert.ok(Math.abs(A[t * M * K + m * K + k] - s) < 1e-5);
      }
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) {
        let s = 0;
        for (let m = 0; m < M; m++) s += a[t * M * K + m * K + k] * dy[t * M * N + m * N + n];
        assert.ok(Math.abs(B[t * K * N + k * N + n] - s) < 1e-5);
      }
    }
    tf.dispose([ga, gb]);
  });

  test('embedTokens: host scatter-add gradient equals the kernel path and hand values', () => {
    const table = tf.tensor2d(seq(5 * 3, 0.5), [5, 3]);
    const ids = Int32Array.from([1, 4, 1, 0]);
    const dy = tf.tensor2d(seq(4 * 3, 0.8), [4, 3]);
    const grad = (host: boolean) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(embedTokens(t as tf.Tensor2D, ids, host), dy)))(table);
    const host = grad(true).arraySync() as number[][];
    const kernel = grad(false).arraySync() as number[][];
    const d = dy.arraySync() as number[][];
    // row 1 receives dy rows 0 and 2; row 4 dy row 1; row 0 dy row 3; rows 2, 3 nothing.
    const want = [d[3], d[0].map((x, j) => x + d[2][j]), [0, 0, 0], [0, 0, 0], d[1]];
    for (const got of [host, kernel]) got.forEach((row, i) => row.forEach((x, j) => assert.ok(Math.abs(x - want[i][j]) < 1e-6)));
  });

  test('whole-model gradients match finite differences of the float64 reference', () => {
    const config = createModelConfig({ modelType: 'qwen2', vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2 });
    const heads = { lm: true, score: false };
    const w = makeTestWeights(config, heads, 77);
    const model = modelFromHfTensors(config, heads, w, 'test');
    checkGradients(model, w, [3, 9, 27, 1, 14, 5], [...GRADIENT_PROBES, ['model.layers.0.self_attn.k_proj.bias', 3]]);
    model.dispose();
  });

  test('tied embeddings: the embedding gets both its lookup and its head gradient', () => {
    const config = createModelConfig({ vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 1, tieWordEmbeddings: true });
    const heads = { lm: true, score: false };
    const w = makeTestWeights(config, heads, 78);
    const model = modelFromHfTensors(config, heads, w, 'test');
    // Row 9 is both looked up (input) and scored (target); row 30 only scored; row 12 neither (head gradient only).
    const probes: [string, number][] = [9 * 16 + 2, 30 * 16 + 5, 12 * 16 + 7].map((i) => ['model.embed_tokens.weight', i]);
    checkGradients(model, w, [9, 4, 30, 9, 1], [...probes, ...GRADIENT_PROBES.filter(([n]) => n !== 'lm_head.weight')]);
    model.dispose();
  });
});
