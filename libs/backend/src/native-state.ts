import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '@posttrain/native-kernels';

/**
 * The native kernels' state, shared by the kernels, their registration
 * (wasm-patches.ts) and the ops that choose a fused path (adamw-update.ts).
 */
export const registeredNative: { addon: NativeAddon | null; active: boolean; enabled: boolean } = { addon: null, active: false, enabled: true };

/**
 * Gives applyWasmPatches the native addon (or null for none). Takes effect at
 * the next applyWasmPatches, so call it before (initBackend does).
 */
export function useNativeKernels(addon: NativeAddon | null): void {
  registeredNative.addon = addon;
}

/**
 * Switches the registered native kernels off (each then runs the wasm kernel
 * it wraps, and fused ops their tfjs formulation) or back on; returns the
 * previous setting. For comparing the two paths in one process: tests and
 * `posttrain model bench`.
 */
export function setNativeKernelsEnabled(on: boolean): boolean {
  const previous = registeredNative.enabled;
  registeredNative.enabled = on;
  return previous;
}

/** Whether native kernels are registered on wasm, switched on, and wasm is the current backend. */
export function nativeKernelsActive(): boolean {
  return registeredNative.active && registeredNative.enabled && tf.getBackend() === 'wasm';
}

export const nativeSwitch = (): boolean => registeredNative.enabled;
