import * as tf from '@tensorflow/tfjs-core';
import { asWasmBackend, HeapViews, wasmData, type WasmBackendLike } from './wasm-internals';

/**
 * A `BatchMatMul` kernel for the wasm backend that routes every product it can
 * to XNNPACK's fully-connected operator, the only fast matmul in
 * tfjs-backend-wasm 4.22. The stock kernel uses XNNPACK only when neither
 * operand is transposed and both have batch size 1; everything else (transposed
 * operands, any batch, even x[B,T,D] @ W[D,N]) goes to a scalar blocked loop
 * that is 10-40x slower. This wrapper:
 *
 * - materialises `transposeA` / `transposeB` with the Transpose kernel (a copy
 *   costs O(size), the slow loop costs O(M*K*N));
 * - when `b` has batch size 1 (x[B,T,D] @ W[D,N], or W broadcast), runs one
 *   2-D product [B*T, D] @ [D, N]: the batch dims of `a` fold into its rows;
 * - for true batched products (attention), runs one 2-D XNNPACK product per
 *   batch entry on zero-copy views into the heap, or the stock kernel when the
 *   slices are too small for XNNPACK's per-call weight packing to pay off.
 *
 * XNNPACK caches the packed weights keyed by the wasm tensor id of `b`, so a
 * weight matrix multiplied on every step (a Variable) is packed once per value.
 */

/** How true batched products (batch of `b` > 1) are run. */
export type BatchedStrategy = 'auto' | 'slices' | 'kernel';

let batchedStrategy: BatchedStrategy = 'auto';

/** Forces a strategy for true batched products; used by the benchmark to compare them. */
export function setBatchedMatMulStrategy(strategy: BatchedStrategy): void {
  batchedStrategy = strategy;
}

/**
 * Whether per-batch XNNPACK slices beat the stock batched loop for one
 * [M,K] @ [K,N] slice. Each slice pays for creating an XNNPACK operator and
 * packing its K*N weights, so slices need enough rows (M) and work to amortise
 * that. Measured (bench-kernels.ts `batched-crossover`; 2-core AVX-512
 * machine, tfjs 4.22, SIMD, 1 thread; GFLOP/s stock loop vs slices):
 * 128x64x128 1.97 vs 12.4; 32x16x32 1.71 vs 5.5; 16x16x16 1.61 vs 2.42;
 * 8x8x8 1.19 vs 0.51; and for one-row products (KV-cache decoding, M=1)
 * the stock loop wins 2-3x at every K, N tried (64-512).
 */
export function slicesAreFaster(m: number, k: number, n: number): boolean {
  return m >= 16 && m * k * n >= 4096;
}

type RawBatchMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  outId: number,
) => void;

const rawByModule = new WeakMap<object, RawBatchMatMul>();

function rawBatchMatMul(backend: WasmBackendLike): RawBatchMatMul {
  let fn = rawByModule.get(backend.wasm);
  if (fn === undefined) {
    const wrapped = backend.wasm.cwrap('BatchMatMul', null, [
      'number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number',
    ]);
    fn = wrapped as RawBatchMatMul;
    rawByModule.set(backend.wasm, fn);
  }
  return fn;
}

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

const sizeOf = (dims: number[]): number => dims.reduce((p, d) => p * d, 1);

/** The flat batch index into an operand (batch dims right-aligned, size-1 dims broadcast) for flat output batch index `outIndex`. */
export function broadcastIndex(outIndex: number, outBatch: number[], opBatch: number[]): number {
  // Operand batch dims align to the right of the output batch dims.
  let rem = outIndex;
  let idx = 0;
  let stride = 1;
  for (let d = outBatch.length - 1; d >= 0; d--) {
    const o = rem % outBatch[d];
    rem = Math.floor(rem / outBatch[d]);
    const od = d - (outBatch.length - opBatch.length);
    if (od >= 0) {
      const size = opBatch[od];
      idx += (size === 1 ? 0 : o) * stride;
      stride *= size;
    }
  }
  return idx;
}

/** The operands and sizes of a float32 BatchMatMul C = op(A) @ op(B), with broadcast batch dims. */
export interface MatMulDims {
  a: tf.TensorInfo;
  b: tf.TensorInfo;
  transposeA: boolean;
  transposeB: boolean;
  m: number;
  k: number;
  n: number;
  aBatch: number[];
  bBatch: number[];
  outBatch: number[];
}

/**
 * Reads a BatchMatMul call's operands and sizes; null when a hand-written
 * kernel does not apply (not float32, rank under 2, mismatched or empty
 * product), so the caller runs the stock kernel instead.
 */
export function matMulDims(args: Parameters<tf.KernelFunc>[0]): MatMulDims | null {
  const a = args.inputs.a as tf.TensorInfo;
  const b = args.inputs.b as tf.TensorInfo;
  const transposeA = Boolean(args.attrs?.transposeA);
  const transposeB = Boolean(args.attrs?.transposeB);
  const aRank = a.shape.length;
  const bRank = b.shape.length;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || aRank < 2 || bRank < 2) return null;
  const m = transposeA ? a.shape[aRank - 1] : a.shape[aRank - 2];
  const kA = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
  const kB = transposeB ? b.shape[bRank - 1] : b.shape[bRank - 2];
  const n = transposeB ? b.shape[bRank - 2] : b.shape[bRank - 1];
  if (kA !== kB || m * kA * n === 0) return null;
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  return { a, b, transposeA, transposeB, m, k: kA, n, aBatch, bBatch, outBatch };
}

/**
 * Builds the replacement kernel function around the stock one. `original` is
 * called unchanged for what this wrapper does not handle (non-float32, empty
 * tensors, mismatched inner dimensions: it owns those error messages).
 */
export function makeFastBatchMatMul(original: tf.KernelFunc, transposeKernel: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const dims = matMulDims(args);
    if (dims === null) return original(args);
    const { a, b, transposeA, transposeB, m, k, n, aBatch, bBatch, outBatch } = dims;
    const aBatchSize = sizeOf(aBatch);
    const bBatchSize = sizeOf(bBatch);
    const outBatchSize = sizeOf(outBatch);

    let useXnn: boolean;
    if (bBatchSize === 1) {
      // A transposed weight must be copied and re-packed on every call; for a
      // few rows (decoding one token against a tied embedding) that costs more
      // than the stock loop saves. An untransposed one stays packed in XNNPACK's cache.
      useXnn = !transposeB || slicesAreFaster(aBatchSize * m, k, n);
    } else {
      // The stock kernel sizes its output by max(batchA, batchB), so it is
      // wrong when both operands broadcast (a[2,1,..] @ b[1,3,..]): slices then.
      const stockHandles =
        outBatchSize === Math.max(aBatchSize, bBatchSize) && (aBatchSize === bBatchSize || aBatchSize === 1);
      useXnn =
        !stockHandles || batchedStrategy === 'slices' || (batchedStrategy === 'auto' && slicesAreFaster(m, k, n));
    }
    if (!useXnn) return original(args);

    const backend = asWasmBackend(args.backend);
    const temps: tf.TensorInfo[] = [];
    // Transpose as a 3-D [batch, rows, cols] view of the same data: the
    // kernel is faster on rank 3 than on rank 4+, and only the flat batch
    // order matters below.
    const swapLast3d = (x: tf.TensorInfo, batch: number): tf.TensorInfo => {
      const r = x.shape.length;
      const view: tf.TensorInfo = { dataId: x.dataId, dtype: x.dtype, shape: [batch, x.shape[r - 2], x.shape[r - 1]] };
      const t = transposeKernel({ inputs: { x: view }, backend: args.backend, attrs: { perm: [0, 2, 1] } }) as tf.TensorInfo;
      temps.push(t);
      return t;
    };
    const raw = rawBatchMatMul(backend);
    const views = new HeapViews(backend);
    let out: tf.TensorInfo | null = null;
    try {
      const a2 = transposeA ? swapLast3d(a, aBatchSize) : a;
      const b2 = transposeB ? swapLast3d(b, bBatchSize) : b;
      out = backend.makeOutput([...outBatch, m, n], 'float32');
      const aData = wasmData(backend, a2);
      const bData = wasmData(backend, b2);
      const outData = wasmData(backend, out);
      if (bBatchSize === 1) {
        // b is one [K, N] matrix: fold every batch dim of a into rows. b's batch
        // dims are all 1, so the output has exactly a's batch entries.
        const rows = aBatchSize * m;
        raw(aData.id, shapeBytes([1, rows, k]), 3, bData.id, shapeBytes([1, k, n]), 3, false, false, outData.id);
      } else {
        const aShape = shapeBytes([1, m, k]);
        const bShape = shapeBytes([1, k, n]);
        for (let i = 0; i < outBatchSize; i++) {
          const ia = broadcastIndex(i, outBatch, aBatch);
          const ib = broadcastIndex(i, outBatch, bBatch);
          const aView = views.view(aData.memoryOffset + ia * m * k * 4, m * k);
          const bView = views.view(bData.memoryOffset + ib * k * n * 4, k * n);
          const outView = views.view(outData.memoryOffset + i * m * n * 4, m * n);
          raw(aView, aShape, 3, bView, bShape, 3, false, false, outView);
          // Releasing b's view runs XNNPACK's disposal callback, which frees the
          // operator (and packed weights) cached under that id.
          views.release(outView);
          views.release(bView);
          views.release(aView);
        }
      }
    } catch (err) {
      if (out !== null) backend.disposeData(out.dataId);
      throw err;
    } finally {
      views.releaseAll();
      for (const t of temps) backend.disposeData(t.dataId);
    }
    return out;
  };
}
