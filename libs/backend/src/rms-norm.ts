import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '@posttrain/native-kernels';
import { asWasmBackend, wasmData } from './wasm-internals';
import { nativeKernelsActive } from './native-state';

/** Kernel names of the fused RMSNorm and its gradient (registered on wasm with the native kernels). */
export const FUSED_RMS_NORM = 'PosttrainRmsNorm';
export const FUSED_RMS_NORM_GRAD = 'PosttrainRmsNormGrad';

/**
 * RMSNorm over the last axis (Zhang & Sennrich 2019; HF LlamaRMSNorm):
 *   y = x · w / √(mean(x²) + eps)
 * x [N, D], weight [D]. With the native kernels on wasm, forward and backward are
 * one kernel each (instead of about six ops forward and a dozen backward, with
 * their reductions); elsewhere the tfjs formulation below. Call inside tf.tidy.
 */
export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  if (x.rank !== 2 || weight.rank !== 1 || x.shape[1] !== weight.shape[0]) {
    throw new Error(`rmsNorm: x [${x.shape}] and weight [${weight.shape}]: expected [N, D] and [D]`);
  }
  if (nativeKernelsActive() && x.dtype === 'float32' && weight.dtype === 'float32') {
    // Without a gradient tape (inference) the kernel runs bare: tf.customGrad's bookkeeping costs
    // more than the kernel itself at decoding sizes, and rstd is only kept for the gradient.
    if (tf.engine().isTapeOn()) return fused(eps)(x, weight) as tf.Tensor2D;
    const [y, rstd] = tf.engine().runKernel(FUSED_RMS_NORM, { x, weight }, { eps }) as tf.Tensor[];
    rstd.dispose();
    return y as tf.Tensor2D;
  }
  const variance = tf.mean(tf.square(x), -1, true); // (N, 1)
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight) as tf.Tensor2D;
}

const fusedByEps = new Map<number, (x: tf.Tensor, w: tf.Tensor) => tf.Tensor>();

function fused(eps: number): (x: tf.Tensor, w: tf.Tensor) => tf.Tensor {
  let f = fusedByEps.get(eps);
  if (f === undefined) {
    const forward = (x: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
      const [y, rstd] = tf.engine().runKernel(FUSED_RMS_NORM, { x, weight: w }, { eps }) as tf.Tensor[];
      save([x, w, rstd]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, [sx, sw, sr]: tf.Tensor[]) => tf.engine().runKernel(FUSED_RMS_NORM_GRAD, { dy, x: sx, weight: sw, rstd: sr }, {}) as tf.Tensor[],
      };
    };
    f = tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor, w: tf.Tensor) => tf.Tensor;
    fusedByEps.set(eps, f);
  }
  return f;
}

type Heap = { backend: ReturnType<typeof asWasmBackend>; off: (t: tf.TensorInfo) => number };

function heapOf(backend: unknown): Heap {
  const b = asWasmBackend(backend);
  return { backend: b, off: (t) => wasmData(b, t).memoryOffset / 4 };
}

/** Forward kernel: inputs {x [N,D], weight [D]}, attr eps -> [y [N,D], rstd [N]]. */
export function makeNativeRmsNorm(addon: NativeAddon): tf.KernelFunc {
  return (args) => {
    const { x, weight } = args.inputs as Record<string, tf.TensorInfo>;
    const [rows, d] = x.shape;
    const { backend, off } = heapOf(args.backend);
    const y = backend.makeOutput([rows, d], 'float32');
    const rstd = backend.makeOutput([rows], 'float32');
    try {
      addon.rmsnorm(backend.wasm.HEAPU8.buffer as ArrayBuffer, off(x), off(weight), off(y), off(rstd), rows, d, (args.attrs as { eps: number }).eps);
    } catch (err) {
      backend.disposeData(y.dataId);
      backend.disposeData(rstd.dataId);
      throw err;
    }
    return [y, rstd];
  };
}

/** Gradient kernel: inputs {dy, x, weight, rstd} -> [dx [N,D], dweight [D]]. */
export function makeNativeRmsNormGrad(addon: NativeAddon): tf.KernelFunc {
  return (args) => {
    const { dy, x, weight, rstd } = args.inputs as Record<string, tf.TensorInfo>;
    const [rows, d] = x.shape;
    const { backend, off } = heapOf(args.backend);
    const dx = backend.makeOutput([rows, d], 'float32');
    const dw = backend.makeOutput([d], 'float32');
    try {
      addon.rmsnormGrad(backend.wasm.HEAPU8.buffer as ArrayBuffer, off(dy), off(x), off(weight), off(rstd), off(dx), off(dw), rows, d);
    } catch (err) {
      backend.disposeData(dx.dataId);
      backend.disposeData(dw.dataId);
      throw err;
    }
    return [dx, dw];
  };
}
