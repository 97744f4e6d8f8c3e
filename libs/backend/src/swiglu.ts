import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '@posttrain/native-kernels';
import { asWasmBackend, wasmData } from './wasm-internals';
import { nativeKernelsActive } from './native-state';

/** The kernel name of the fused SwiGLU gate (registered on wasm with the native kernels). */
export const FUSED_SWIGLU = 'PosttrainSwiGlu';

/**
 * SwiGLU's gate (Shazeer 2020; HF LlamaMLP): silu(gate) · up = gate · sigmoid(gate) · up,
 * elementwise over equal shapes. With the native kernels on wasm it is one kernel
 * instead of three; elsewhere the tfjs ops below. The fused kernel has no
 * gradient: it is for inference (the model's decoding step), and training keeps
 * the differentiable ops.
 */
export function swiGluInference(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  if (!tf.util.arraysEqual(gate.shape, up.shape)) throw new Error(`swiGluInference: gate [${gate.shape}] and up [${up.shape}]: expected equal shapes`);
  if (nativeKernelsActive() && gate.dtype === 'float32' && up.dtype === 'float32') return tf.engine().runKernel(FUSED_SWIGLU, { gate, up }, {}) as tf.Tensor;
  return tf.mul(tf.mul(gate, tf.sigmoid(gate)), up);
}

/** The wasm kernel behind FUSED_SWIGLU. */
export function makeNativeSwiGlu(addon: NativeAddon): tf.KernelFunc {
  return (args) => {
    const { gate, up } = args.inputs as Record<string, tf.TensorInfo>;
    if (!tf.util.arraysEqual(gate.shape, up.shape) || gate.dtype !== 'float32' || up.dtype !== 'float32') {
      throw new Error(`${FUSED_SWIGLU}: gate [${gate.shape}] (${gate.dtype}) and up [${up.shape}] (${up.dtype}): expected equal shapes, float32`);
    }
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput(gate.shape, 'float32');
    const off = (t: tf.TensorInfo) => wasmData(backend, t).memoryOffset / 4;
    try {
      addon.swiglu(backend.wasm.HEAPU8.buffer as ArrayBuffer, off(gate), off(up), off(out), tf.util.sizeFromShape(gate.shape));
    } catch (err) {
      backend.disposeData(out.dataId);
      throw err;
    }
    return out;
  };
}
