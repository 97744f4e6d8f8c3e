/**
 * Matrix products whose gradients use explicit transposes.
 *
 * tfjs' own MatMul/BatchMatMul gradient calls matMul with transposeA/transposeB,
 * which on the wasm backend runs 10-30x slower than a plain product (measured on
 * the 2-core dev machine: 2-D [1024,256]x[256,688] 28 GFLOP/s plain, 1.9 with
 * transposeB, 0.6 with transposeA). Transposing explicitly first and multiplying
 * without flags costs one copy and keeps the fast path, so the model only ever
 * multiplies through these two functions.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeKernelsActive } from '@posttrain/backend';

type Grad2 = (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
};

function explicitGradProduct(perm: number[]): (a: tf.Tensor, b: tf.Tensor) => tf.Tensor {
  const f: Grad2 = (a, b, save) => {
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      // The native BLAS kernel takes transposes as flags; plain wasm needs them spelled out.
      gradFunc: (dy, [sa, sb]) =>
        nativeKernelsActive()
          ? [tf.matMul(dy, sb, false, true), tf.matMul(sa, dy, true, false)]
          : [
              tf.matMul(dy, tf.transpose(sb, perm)), // dA = dY · Bᵀ
              tf.matMul(tf.transpose(sa, perm), dy), // dB = Aᵀ · dY
            ],
    };
  };
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
}

const product2d = explicitGradProduct([1, 0]);
const product3d = explicitGradProduct([0, 2, 1]);

/**
 * Whether a gradient tape records this op. Without one (inference: generation, reference log-probs)
 * the products skip the gradient wrapper: same kernel and values, without tf.customGrad's per-call
 * bookkeeping, which a one-token decoding step, made of small products, feels.
 */
const recording = (): boolean => tf.engine().isTapeOn();

let stockGradients = false;

/**
 * Benchmark switch: route products through plain tf.matMul with tfjs' own (transposed-product)
 * gradients, the straightforward formulation the bench compares against. Returns the previous setting.
 */
export function useStockProductGradients(on: boolean): boolean {
  const previous = stockGradients;
  stockGradients = on;
  return previous;
}

/** x [M, K] · w [K, N] -> [M, N]. */
export function matMul2d(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  if (x.rank !== 2 || w.rank !== 2 || x.shape[1] !== w.shape[0]) {
    throw new Error(`matMul2d: shapes [${x.shape}] and [${w.shape}] do not chain`);
  }
  return (stockGradients || !recording() ? tf.matMul(x, w) : product2d(x, w)) as tf.Tensor2D;
}

/** a [B, M, K] · b [B, K, N] -> [B, M, N]. */
export function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (a.rank !== 3 || b.rank !== 3 || a.shape[0] !== b.shape[0] || a.shape[2] !== b.shape[1]) {
    throw new Error(`batchMatMul: shapes [${a.shape}] and [${b.shape}] do not chain`);
  }
  return (stockGradients || !recording() ? tf.matMul(a, b) : product3d(a, b)) as tf.Tensor3D;
}

/**
 * a [B, M, K] · b [B, N, K]ᵀ -> [B, M, N] (attention scores q·kᵀ). With the native BLAS kernel the
 * transpose is a flag, so decoding does not copy the whole key cache every step; on plain wasm it is
 * spelled out (see above).
 */
export function batchMatMulTransposeB(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (a.rank !== 3 || b.rank !== 3 || a.shape[0] !== b.shape[0] || a.shape[2] !== b.shape[2]) {
    throw new Error(`batchMatMulTransposeB: shapes [${a.shape}] and [${b.shape}]ᵀ do not chain`);
  }
  if (!stockGradients && nativeKernelsActive()) return tf.matMul(a, b, false, true) as tf.Tensor3D;
  return batchMatMul(a, tf.transpose(b, [0, 2, 1]) as tf.Tensor3D);
}
