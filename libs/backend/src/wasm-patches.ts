import * as tf from '@tensorflow/tfjs-core';
import { makeFastBatchMatMul } from './fast-batch-mat-mul';
import { makeMatMulGradConfig } from './mat-mul-gradient';
import { unsortedSegmentSumWasm } from './unsorted-segment-sum-wasm';

/** The changes `applyWasmPatches` makes, by name (reported in BackendInfo). */
export type WasmPatch = 'batch-mat-mul-kernel' | 'batch-mat-mul-gradient' | 'unsorted-segment-sum-kernel';

interface SavedState {
  kernel: tf.KernelConfig;
  gradient: tf.GradConfig | undefined;
}

let saved: SavedState | null = null;
/** Whether this module registered UnsortedSegmentSum (and so may remove it). */
let addedSegmentSum = false;

/**
 * Replaces the wasm `BatchMatMul` kernel with the XNNPACK-routing wrapper,
 * installs the transpose-free `BatchMatMul` gradient (active while the current
 * backend is wasm; other backends keep native transposed products) and adds
 * the missing `UnsortedSegmentSum` wasm kernel. Idempotent. The wasm kernels
 * must be registered (importing '@tensorflow/tfjs-backend-wasm' does that);
 * the backend need not be initialised yet.
 */
export function applyWasmPatches(): WasmPatch[] {
  const patches: WasmPatch[] = ['batch-mat-mul-kernel', 'batch-mat-mul-gradient', 'unsorted-segment-sum-kernel'];
  if (saved !== null) return patches;
  const kernel = tf.getKernel(tf.BatchMatMul, 'wasm');
  const transpose = tf.getKernel(tf.Transpose, 'wasm');
  if (kernel === undefined || transpose === undefined) {
    throw new Error("applyWasmPatches: the wasm kernels are not registered; import '@tensorflow/tfjs-backend-wasm' first");
  }
  const gradient = tf.getGradient(tf.BatchMatMul);
  tf.unregisterKernel(tf.BatchMatMul, 'wasm');
  tf.registerKernel({
    kernelName: tf.BatchMatMul,
    backendName: 'wasm',
    setupFunc: kernel.setupFunc,
    disposeFunc: kernel.disposeFunc,
    kernelFunc: makeFastBatchMatMul(kernel.kernelFunc, transpose.kernelFunc),
  });
  tf.registerGradient(makeMatMulGradConfig(() => tf.getBackend() === 'wasm'));
  if (tf.getKernel(tf.UnsortedSegmentSum, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSumWasm });
    addedSegmentSum = true;
  }
  saved = { kernel, gradient };
  return patches;
}

/**
 * Restores the stock kernels and gradient (for benchmarks that compare before
 * and after). The `UnsortedSegmentSum` kernel stays unless `all` is set, since
 * without it embedding gradients do not run at all on wasm.
 */
export function removeWasmPatches(options: { all?: boolean } = {}): void {
  if (saved === null) return;
  tf.unregisterKernel(tf.BatchMatMul, 'wasm');
  tf.registerKernel(saved.kernel);
  if (saved.gradient !== undefined) tf.registerGradient(saved.gradient);
  if (options.all && addedSegmentSum) {
    tf.unregisterKernel(tf.UnsortedSegmentSum, 'wasm');
    addedSegmentSum = false;
  }
  saved = null;
}

/** Whether the patches are currently installed. */
export function wasmPatchesActive(): boolean {
  return saved !== null;
}
