/**
 * @posttrain/backend: picks the tfjs backend (tfjs-node-gpu > tfjs-node >
 * wasm > cpu, or the one POSTTRAIN_BACKEND names), logs which one runs, and on
 * wasm installs kernel fixes: matMul routed to XNNPACK (transposed, batched
 * and broadcast products included), a BatchMatMul gradient without transposed
 * products, and the UnsortedSegmentSum kernel that embedding gradients need.
 * Where @posttrain/native-kernels is built, it also registers the native
 * kernels on wasm (BLAS BatchMatMul, fused AdamW, RMSNorm, SwiGLU and one-token
 * attention: `info.native`); `adamWUpdate`, `rmsNorm` and `swiGluInference` use
 * them when they run and tfjs ops otherwise, and `decodeAttentionNative` runs
 * the attention kernel (the model's decoding step falls back to tfjs ops).
 *
 * @example
 * ```ts
 * import { initBackend } from '@posttrain/backend';
 * const info = await initBackend(); // or initBackend({ backend: 'wasm' })
 * console.log(info.name, info.version, info.threads, info.simd, info.patches);
 * ```
 */
export { describeBackend, describeKernels, initBackend, getBackendInfo, wasmBinaryDir } from './init-backend';
export type { BackendInfo, BackendLogger, InitBackendOptions, NativeKernelsInfo } from './init-backend';
export { BACKEND_NAMES, BACKEND_CHOICES, parseBackendName } from './backend-name';
export type { BackendName, BackendRequest } from './backend-name';
export { applyWasmPatches, removeWasmPatches, wasmPatchesActive } from './wasm-patches';
export { setNativeKernelsEnabled, nativeKernelsActive } from './native-state';
export type { WasmPatch } from './wasm-patches';
export { adamWUpdate } from './adamw-update';
export { rmsNorm } from './rms-norm';
export { swiGluInference } from './swiglu';
export { decodeAttentionNative } from './decode-attention';
export type { DecodeAttentionInputs } from './decode-attention';
export type { AdamWHyper } from './adamw-update';
