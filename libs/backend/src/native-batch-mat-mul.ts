import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '@posttrain/native-kernels';
import { broadcastIndex, matMulDims } from './fast-batch-mat-mul';
import { asWasmBackend, wasmData } from './wasm-internals';

/**
 * A `BatchMatMul` kernel for the wasm backend that calls the platform BLAS
 * (`cblas_sgemm`, or `cblas_sgemv` for one-row products) through the native
 * addon, directly on the operands' wasm-heap memory: no copy in or out.
 * Transposes become BLAS flags; batch dims broadcast like tfjs' (right-aligned,
 * size-1 dims repeat); when `b` is one matrix and `a` is not transposed, a's
 * batch dims fold into rows (one product). `fallback` runs what it does not
 * take (non-float32, rank < 2, empty or mismatched operands: the stock kernel
 * owns those errors) and everything while `enabled()` is false.
 */
export function makeNativeBatchMatMul(addon: NativeAddon, fallback: tf.KernelFunc, enabled: () => boolean): tf.KernelFunc {
  return (args) => {
    if (!enabled()) return fallback(args);
    const dims = matMulDims(args);
    if (dims === null) return fallback(args);
    const { a, b, transposeA, transposeB, m, k, n, aBatch, bBatch, outBatch } = dims;
    const outBatchSize = sizeOf(outBatch);

    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput([...outBatch, m, n], 'float32');
    // Read offsets and the heap only after makeOutput: allocating may grow
    // the wasm memory, which detaches the previous ArrayBuffer.
    const aBase = wasmData(backend, a).memoryOffset / 4;
    const bBase = wasmData(backend, b).memoryOffset / 4;
    const cBase = wasmData(backend, out).memoryOffset / 4;
    const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
    try {
      if (sizeOf(bBatch) === 1 && !transposeA) {
        // a[..., M, K] @ W: every batch entry of a shares W, so one product of
        // [batch*M, K] rows (out has exactly a's batch entries, W's dims being 1).
        addon.sgemm(heap, outBatchSize * m, n, k, false, transposeB, Int32Array.of(aBase), Int32Array.of(bBase), cBase);
      } else {
        const aOffsets = new Int32Array(outBatchSize);
        const bOffsets = new Int32Array(outBatchSize);
        for (let i = 0; i < outBatchSize; i++) {
          aOffsets[i] = aBase + broadcastIndex(i, outBatch, aBatch) * m * k;
          bOffsets[i] = bBase + broadcastIndex(i, outBatch, bBatch) * k * n;
        }
        addon.sgemm(heap, m, n, k, transposeA, transposeB, aOffsets, bOffsets, cBase);
      }
    } catch (err) {
      backend.disposeData(out.dataId);
      throw err;
    }
    return out;
  };
}

const sizeOf = (dims: number[]): number => dims.reduce((p, d) => p * d, 1);
