/**
 * Kernel micro-benchmark for the wasm backend, stock kernels vs this
 * package's patches. Prints one JSON object per line.
 *
 *   npx tsx libs/backend/src/bench-kernels.ts            # matmuls, chain, crossover, Llama step
 *   npx tsx libs/backend/src/bench-kernels.ts --no-step  # skip the (slow) Llama step
 *   npx tsx libs/backend/src/bench-kernels.ts --reps 7
 *   npx tsx libs/backend/src/bench-kernels.ts --profile  # per-kernel time of one patched step
 *
 * Each timing is the best of `reps` runs (others share the machine; the best
 * run is the least disturbed one). GFLOP/s counts 2*M*K*N per product.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, applyWasmPatches, removeWasmPatches } from './index';
import { setBatchedMatMulStrategy } from './fast-batch-mat-mul';
import { buildLlamaStep, type LlamaStepConfig } from './llama-step';

const args = process.argv.slice(2);
const repsArg = args.indexOf('--reps');
const reps = repsArg >= 0 ? Number(args[repsArg + 1]) : 5;
if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps: got "${args[repsArg + 1]}", expected a positive integer`);
const withStep = !args.includes('--no-step');
const profileOnly = args.includes('--profile');

function bestMs(run: () => void, n = reps): number {
  run(); // warm-up: XNNPACK operator creation, heap growth
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    run();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/**
 * Waits for the result and frees it. (Not `tf.tidy(() => t.dataSync())`:
 * tidy walks whatever its callback returns looking for tensors, and walking a
 * million-element Float32Array costs far more than the matMul.)
 */
function readAndDispose(t: tf.Tensor): void {
  t.dataSync();
  t.dispose();
}

function emit(record: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(record) + '\n');
}

interface MatMulCase {
  name: string;
  a: number[];
  b: number[];
  transposeA?: boolean;
  transposeB?: boolean;
}

const matmulCases: MatMulCase[] = [
  { name: '2d', a: [1024, 256], b: [256, 1024] },
  { name: '2d-transposeB', a: [1024, 256], b: [1024, 256], transposeB: true },
  { name: '2d-transposeA', a: [256, 1024], b: [256, 1024], transposeA: true },
  { name: '3d-x-2d-weight', a: [8, 128, 256], b: [256, 1024] },
  { name: '3d-batched-q@kT', a: [32, 128, 64], b: [32, 128, 64], transposeB: true },
  { name: '3d-batched-att@v', a: [32, 128, 128], b: [32, 128, 64] },
  { name: '4d-batched-q@kT', a: [8, 4, 128, 64], b: [8, 4, 128, 64], transposeB: true },
];

function matmulFlops(c: MatMulCase): number {
  const ra = c.a.length;
  const m = c.transposeA ? c.a[ra - 1] : c.a[ra - 2];
  const k = c.transposeA ? c.a[ra - 2] : c.a[ra - 1];
  const rb = c.b.length;
  const n = c.transposeB ? c.b[rb - 2] : c.b[rb - 1];
  const batch = Math.max(c.a.slice(0, -2).reduce((p, d) => p * d, 1), c.b.slice(0, -2).reduce((p, d) => p * d, 1));
  return 2 * batch * m * k * n;
}

function benchMatMuls(patched: boolean): void {
  for (const c of matmulCases) {
    const a = tf.randomNormal(c.a);
    const b = tf.randomNormal(c.b);
    const ms = bestMs(() => readAndDispose(tf.matMul(a, b, c.transposeA, c.transposeB)));
    emit({ bench: 'matmul', case: c.name, a: c.a, b: c.b, transposeA: !!c.transposeA, transposeB: !!c.transposeB, patched, ms: +ms.toFixed(2), gflops: +(matmulFlops(c) / ms / 1e6).toFixed(2) });
    tf.dispose([a, b]);
  }
}

/**
 * x[1024,256] @ W1[256,1024] @ W2[1024,256], forward + gradients for x, W1,
 * W2 (2-D, because the stock gradient rejects a broadcast 3-D @ 2-D product).
 */
function benchChain(patched: boolean): void {
  const x = tf.randomNormal([1024, 256]);
  const w1 = tf.randomNormal([256, 1024], 0, 1 / 16);
  const w2 = tf.randomNormal([1024, 256], 0, 1 / 32);
  const f = (xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.sum(tf.matMul(tf.matMul(xx, a), b));
  const ms = bestMs(() =>
    tf.tidy(() => {
      for (const g of tf.grads(f)([x, w1, w2])) g.dataSync();
    }),
  );
  // Forward 2 products; backward 2 per product (dX and dW): 3x forward.
  const flops = 3 * 2 * (2 * 8 * 128 * 256 * 1024);
  emit({ bench: 'matmul-chain-fwd-bwd', shape: 'x[1024,256]@W1[256,1024]@W2[1024,256]', patched, ms: +ms.toFixed(2), gflops: +(flops / ms / 1e6).toFixed(2) });
  tf.dispose([x, w1, w2]);
}

/** Stock batched loop vs per-batch XNNPACK slices, to place `slicesAreFaster`. */
function benchCrossover(): void {
  for (const [batch, m, k, n] of [[32, 128, 64, 128], [64, 32, 16, 32], [128, 16, 16, 16], [256, 8, 16, 8], [256, 8, 8, 8], [512, 4, 8, 4]]) {
    const a = tf.randomNormal([batch, m, k]);
    const b = tf.randomNormal([batch, k, n]);
    const result: Record<string, unknown> = { bench: 'batched-crossover', batch, m, k, n };
    for (const strategy of ['kernel', 'slices'] as const) {
      setBatchedMatMulStrategy(strategy);
      const ms = bestMs(() => readAndDispose(tf.matMul(a, b)));
      result[`${strategy}Gflops`] = +((2 * batch * m * k * n) / ms / 1e6).toFixed(2);
    }
    setBatchedMatMulStrategy('auto');
    emit(result);
    tf.dispose([a, b]);
  }
}

/** About 3.3 M parameters, Llama-shaped: D=256, 4 layers, 4 heads, SwiGLU hidden 688, vocab 256. */
const stepConfig: LlamaStepConfig = { vocab: 256, dim: 256, heads: 4, hidden: 688, layers: 4, batch: 4, seq: 128 };

function benchStep(patched: boolean): number {
  const s = buildLlamaStep(stepConfig, 1);
  const params = s.params.reduce((p, v) => p + v.size, 0);
  const ms = bestMs(() => s.step(), patched ? reps : Math.min(reps, 2));
  emit({ bench: 'llama-train-step', config: stepConfig, params, patched, ms: +ms.toFixed(1), effectiveGflops: +(s.flops / ms / 1e6).toFixed(2) });
  s.dispose();
  return ms;
}

/** Where the patched step spends its time, by kernel (sum over calls). */
async function profileStep(): Promise<void> {
  const s = buildLlamaStep(stepConfig, 1);
  s.step();
  const profile = await tf.profile(() => {
    s.step();
  });
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of profile.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls += 1;
    byKernel.set(k.name, e);
  }
  const total = [...byKernel.values()].reduce((p, e) => p + e.ms, 0);
  for (const [name, e] of [...byKernel.entries()].sort((x, y) => y[1].ms - x[1].ms)) {
    emit({ bench: 'llama-step-profile', kernel: name, calls: e.calls, ms: +e.ms.toFixed(1), share: +(e.ms / total).toFixed(3) });
  }
  s.dispose();
}

async function main(): Promise<void> {
  const info = await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
  emit({ bench: 'backend', name: info.name, version: info.version, threads: info.threads, simd: info.simd, patches: info.patches });
  if (profileOnly) {
    await profileStep();
    return;
  }
  removeWasmPatches();
  benchMatMuls(false);
  benchChain(false);
  const before = withStep ? benchStep(false) : NaN;
  applyWasmPatches();
  benchMatMuls(true);
  benchChain(true);
  benchCrossover();
  if (withStep) {
    const after = benchStep(true);
    emit({ bench: 'llama-train-step-speedup', speedup: +(before / after).toFixed(2) });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-kernels: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
