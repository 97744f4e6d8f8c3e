import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { applyWasmPatches } from './wasm-patches';
import { setBatchedMatMulStrategy } from './fast-batch-mat-mul';
function bench(name: string, flops: number, f: () => tf.Tensor, reps = 5) {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now(); const y = f(); y.dataSync(); const dt = performance.now() - t0; y.dispose();
    best = Math.min(best, dt);
  }
  return (flops / best / 1e6);
}
(async () => {
  await tf.setBackend('wasm'); await tf.ready();
  applyWasmPatches();
  for (const [B, M, K, N] of [[32,128,64,128],[32,128,128,64],[64,64,32,64],[64,32,16,32],[256,16,16,16],[256,8,8,8],[512,4,8,4],[64,16,64,16], [16, 256,64,256]]) {
    const a = tf.randomNormal([B, M, K]), b = tf.randomNormal([B, K, N]);
    const fl = 2*B*M*K*N;
    setBatchedMatMulStrategy('kernel'); const g1 = bench('k', fl, () => tf.matMul(a, b));
    setBatchedMatMulStrategy('slices'); const g2 = bench('s', fl, () => tf.matMul(a, b));
    console.log(JSON.stringify({B,M,K,N, kernel: +g1.toFixed(2), slices: +g2.toFixed(2)}));
    a.dispose(); b.dispose();
  }
  console.log(tf.memory().numTensors);
})();
