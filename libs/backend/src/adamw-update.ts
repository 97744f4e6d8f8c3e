import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '@posttrain/native-kernels';
import { asWasmBackend, wasmData } from './wasm-internals';
import { nativeKernelsActive } from './native-state';

/** The kernel name of the fused update (registered on wasm with the native kernels). */
export const FUSED_ADAMW = 'PosttrainAdamW';

/** One AdamW step's hyperparameters; `weightDecay` 0 is plain Adam. */
export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /** Adam's step t >= 1 (bias corrections 1 - beta^t). */
  step: number;
}

/**
 * One AdamW update (decoupled decay, torch.optim.AdamW's order) of a parameter
 * and its moments, each a Variable updated by assign:
 *   p <- p (1 - lr wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * With the native kernels on wasm this is one fused kernel (one pass over the
 * four arrays); elsewhere the same formula in tfjs ops, which it matches to
 * float32 rounding (both compute in float32 in the same order).
 */
export function adamWUpdate(p: tf.Variable, m: tf.Variable, v: tf.Variable, g: tf.Tensor, h: AdamWHyper): void {
  const bc1 = 1 - Math.pow(h.beta1, h.step);
  const bc2 = 1 - Math.pow(h.beta2, h.step);
  if (nativeKernelsActive() && p.dtype === 'float32' && g.dtype === 'float32') {
    const attrs = { lr: h.lr, beta1: h.beta1, beta2: h.beta2, epsilon: h.epsilon, decay: 1 - h.lr * h.weightDecay, bc1, bc2 };
    const [p2, m2, v2] = tf.engine().runKernel(FUSED_ADAMW, { param: p, m, v, grad: g }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    p.assign(p2);
    m.assign(m2);
    v.assign(v2);
    tf.dispose([p2, m2, v2]);
    return;
  }
  tf.tidy(() => {
    const m2 = tf.add(tf.mul(m, h.beta1), tf.mul(g, 1 - h.beta1));
    const v2 = tf.add(tf.mul(v, h.beta2), tf.mul(tf.square(g), 1 - h.beta2));
    m.assign(m2);
    v.assign(v2);
    const decayed = h.weightDecay > 0 ? tf.mul(p, 1 - h.lr * h.weightDecay) : p;
    const update = tf.div(tf.div(m2, bc1), tf.add(tf.sqrt(tf.div(v2, bc2)), h.epsilon));
    p.assign(tf.sub(decayed, tf.mul(update, h.lr)));
  });
}

/** The wasm kernel behind FUSED_ADAMW: three outputs (param, m, v) from the addon's one pass. */
export function makeNativeAdamW(addon: NativeAddon): tf.KernelFunc {
  return (args) => {
    const { param, m, v, grad } = args.inputs as Record<string, tf.TensorInfo>;
    const a = args.attrs as unknown as { lr: number; beta1: number; beta2: number; epsilon: number; decay: number; bc1: number; bc2: number };
    for (const [name, t] of [['m', m], ['v', v], ['grad', grad]] as const) {
      if (!tf.util.arraysEqual(t.shape, param.shape) || t.dtype !== 'float32') {
        throw new Error(`${FUSED_ADAMW}: ${name} has shape [${t.shape}] (${t.dtype}), expected [${param.shape}] float32 like the parameter`);
      }
    }
    const backend = asWasmBackend(args.backend);
    const outs = [backend.makeOutput(param.shape, 'float32'), backend.makeOutput(param.shape, 'float32'), backend.makeOutput(param.shape, 'float32')];
    const off = (t: tf.TensorInfo) => wasmData(backend, t).memoryOffset / 4;
    try {
      addon.adamw(backend.wasm.HEAPU8.buffer as ArrayBuffer, off(param), off(m), off(v), off(grad), off(outs[0]), off(outs[1]), off(outs[2]),
        tf.util.sizeFromShape(param.shape), a.lr, a.beta1, a.beta2, a.epsilon, a.decay, a.bc1, a.bc2);
    } catch (err) {
      for (const o of outs) backend.disposeData(o.dataId);
      throw err;
    }
    return outs;
  };
}
