import * as tf from '@tensorflow/tfjs-core';
import { makeFastBatchMatMul } from './fast-batch-mat-mul';
import { makeNativeBatchMatMul } from './native-batch-mat-mul';
import { FUSED_ADAMW, makeNativeAdamW } from './adamw-update';
import { FUSED_RMS_NORM, FUSED_RMS_NORM_GRAD, makeNativeRmsNorm, makeNativeRmsNormGrad } from './rms-norm';
import { FUSED_DECODE_ATTENTION, makeNativeDecodeAttention } from './decode-attention';
import { FUSED_SWIGLU, makeNativeSwiGlu } from './swiglu';
import { nativeKernelsActive, nativeSwitch, registeredNative } from './native-state';
import { makeMatMulGradConfig } from './mat-mul-gradient';
import { unsortedSegmentSumWasm } from './unsorted-segment-sum-wasm';
import { makeFastEqual, makeRowGather, makeSharedIdentity } from './copy-free-kernels';

/** The changes `applyWasmPatches` makes, by name (reported in BackendInfo). */
export type WasmPatch =
  | 'batch-mat-mul-kernel'
  | 'batch-mat-mul-gradient'
  | 'unsorted-segment-sum-kernel'
  | 'identity-shares-buffer'
  | 'equal-last-axis-kernel'
  | 'gather-rows-kernel'
  | 'native-batch-mat-mul' | 'native-adamw' | 'native-rms-norm' | 'native-decode-attention' | 'native-swiglu';

interface SavedState {
  kernel: tf.KernelConfig;
  /** The stock Identity, Equal and GatherV2 kernels (copy-free-kernels.ts wraps them). */
  stock: tf.KernelConfig[];
  gradient: tf.GradConfig | undefined;
  native: boolean;
}

let saved: SavedState | null = null;
/** Whether this module registered UnsortedSegmentSum (and so may remove it). */
let addedSegmentSum = false;
/**
 * Replaces the wasm `BatchMatMul` kernel with the XNNPACK-routing wrapper,
 * installs the transpose-free `BatchMatMul` gradient (active while the current
 * backend is wasm; other backends keep native transposed products) and adds
 * the missing `UnsortedSegmentSum` wasm kernel, and replaces `Identity`,
 * `Equal` and `GatherV2` with the copy-free kernels (bit-identical results,
 * see copy-free-kernels.ts). Idempotent. The wasm kernels
 * must be registered (importing '@tensorflow/tfjs-backend-wasm' does that);
 * the backend need not be initialised yet.
 */
export function applyWasmPatches(): WasmPatch[] {
  const patches: WasmPatch[] = ['batch-mat-mul-kernel', 'batch-mat-mul-gradient', 'unsorted-segment-sum-kernel', 'identity-shares-buffer', 'equal-last-axis-kernel', 'gather-rows-kernel'];
  const nativePatches: WasmPatch[] = ['native-batch-mat-mul', 'native-adamw', 'native-rms-norm', 'native-decode-attention', 'native-swiglu'];
  if (saved !== null) return saved.native ? [...patches, ...nativePatches] : patches;
  const kernel = tf.getKernel(tf.BatchMatMul, 'wasm');
  const transpose = tf.getKernel(tf.Transpose, 'wasm');
  if (kernel === undefined || transpose === undefined) {
    throw new Error("applyWasmPatches: the wasm kernels are not registered; import '@tensorflow/tfjs-backend-wasm' first");
  }
  const copyFree = ([[tf.Identity, makeSharedIdentity], [tf.Equal, makeFastEqual], [tf.GatherV2, makeRowGather]] as const).map(([name, make]) => {
    const k = tf.getKernel(name, 'wasm');
    if (k === undefined) throw new Error(`applyWasmPatches: the wasm kernel ${name} is not registered`);
    return { stock: k, make };
  });
  const gradient = tf.getGradient(tf.BatchMatMul);
  const native = registeredNative.addon;
  tf.unregisterKernel(tf.BatchMatMul, 'wasm');
  const fast = makeFastBatchMatMul(kernel.kernelFunc, transpose.kernelFunc);
  tf.registerKernel({
    kernelName: tf.BatchMatMul,
    backendName: 'wasm',
    setupFunc: kernel.setupFunc,
    disposeFunc: kernel.disposeFunc,
    kernelFunc: native === null ? fast : makeNativeBatchMatMul(native, fast, nativeSwitch),
  });
  // The BLAS takes transposes as flags, so only plain wasm needs them spelled out.
  tf.registerGradient(makeMatMulGradConfig(() => tf.getBackend() === 'wasm' && !nativeKernelsActive()));
  for (const { stock, make } of copyFree) {
    tf.unregisterKernel(stock.kernelName, 'wasm');
    tf.registerKernel({ ...stock, kernelFunc: make(stock.kernelFunc) });
  }
  if (tf.getKernel(tf.UnsortedSegmentSum, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSumWasm });
    addedSegmentSum = true;
  }
  if (native !== null) {
    tf.registerKernel({ kernelName: FUSED_ADAMW, backendName: 'wasm', kernelFunc: makeNativeAdamW(native) });
    tf.registerKernel({ kernelName: FUSED_RMS_NORM, backendName: 'wasm', kernelFunc: makeNativeRmsNorm(native) });
    tf.registerKernel({ kernelName: FUSED_RMS_NORM_GRAD, backendName: 'wasm', kernelFunc: makeNativeRmsNormGrad(native) });
    tf.registerKernel({ kernelName: FUSED_DECODE_ATTENTION, backendName: 'wasm', kernelFunc: makeNativeDecodeAttention(native) });
    tf.registerKernel({ kernelName: FUSED_SWIGLU, backendName: 'wasm', kernelFunc: makeNativeSwiGlu(native) });
  }
  saved = { kernel, stock: copyFree.map((c) => c.stock), gradient, native: native !== null };
  registeredNative.active = native !== null;
  return native === null ? patches : [...patches, ...nativePatches];
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
  for (const k of saved.stock) {
    tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel(k);
  }
  if (saved.native) for (const k of [FUSED_ADAMW, FUSED_RMS_NORM, FUSED_RMS_NORM_GRAD, FUSED_DECODE_ATTENTION, FUSED_SWIGLU]) tf.unregisterKernel(k, 'wasm');
  registeredNative.active = false;
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
