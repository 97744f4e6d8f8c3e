import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '@posttrain/native-kernels';
import { makeFastBatchMatMul } from './fast-batch-mat-mul';
import { makeNativeBatchMatMul } from './native-batch-mat-mul';
import { makeMatMulGradConfig } from './mat-mul-gradient';
import { unsortedSegmentSumWasm } from './unsorted-segment-sum-wasm';

/** The changes `applyWasmPatches` makes, by name (reported in BackendInfo). */
export type WasmPatch = 'batch-mat-mul-kernel' | 'batch-mat-mul-gradient' | 'unsorted-segment-sum-kernel' | 'native-batch-mat-mul';

interface SavedState {
  kernel: tf.KernelConfig;
  gradient: tf.GradConfig | undefined;
  native: boolean;
}

let saved: SavedState | null = null;
/** Whether this module registered UnsortedSegmentSum (and so may remove it). */
let addedSegmentSum = false;
/** The native addon whose kernels applyWasmPatches registers, and whether they run (a switch for tests and the bench). */
let native: NativeAddon | null = null;
let nativeEnabled = true;

/**
 * Gives applyWasmPatches the native addon (or null for none). Takes effect at
 * the next applyWasmPatches, so call it before (initBackend does).
 */
export function useNativeKernels(addon: NativeAddon | null): void {
  native = addon;
}

/**
 * Switches the registered native kernels off (each then runs the wasm kernel
 * it wraps) or back on; returns the previous setting. For comparing the two
 * paths in one process: tests and `posttrain model bench`.
 */
export function setNativeKernelsEnabled(on: boolean): boolean {
  const previous = nativeEnabled;
  nativeEnabled = on;
  return previous;
}

/** Whether native kernels are registered on wasm and switched on. */
export function nativeKernelsActive(): boolean {
  return saved !== null && saved.native && nativeEnabled;
}

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
  if (saved !== null) return saved.native ? [...patches, 'native-batch-mat-mul'] : patches;
  const kernel = tf.getKernel(tf.BatchMatMul, 'wasm');
  const transpose = tf.getKernel(tf.Transpose, 'wasm');
  if (kernel === undefined || transpose === undefined) {
    throw new Error("applyWasmPatches: the wasm kernels are not registered; import '@tensorflow/tfjs-backend-wasm' first");
  }
  const gradient = tf.getGradient(tf.BatchMatMul);
  tf.unregisterKernel(tf.BatchMatMul, 'wasm');
  const fast = makeFastBatchMatMul(kernel.kernelFunc, transpose.kernelFunc);
  tf.registerKernel({
    kernelName: tf.BatchMatMul,
    backendName: 'wasm',
    setupFunc: kernel.setupFunc,
    disposeFunc: kernel.disposeFunc,
    kernelFunc: native === null ? fast : makeNativeBatchMatMul(native, fast, () => nativeEnabled),
  });
  // The BLAS takes transposes as flags, so only plain wasm needs them spelled out.
  tf.registerGradient(makeMatMulGradConfig(() => tf.getBackend() === 'wasm' && !nativeKernelsActive()));
  if (tf.getKernel(tf.UnsortedSegmentSum, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSumWasm });
    addedSegmentSum = true;
  }
  saved = { kernel, gradient, native: native !== null };
  return native === null ? patches : [...patches, 'native-batch-mat-mul'];
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
