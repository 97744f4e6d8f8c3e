import * as tf from '@tensorflow/tfjs-core';

/**
 * A `BatchMatMul` gradient that (1) never asks the backend for a transposed
 * product when `explicitTranspose()` is true (on wasm those run in a scalar
 * loop 10-15x slower than the plain product, while a Transpose is a cheap
 * copy), (2) computes the weight gradient of x[B,T,D] @ W[D,N] as one 2-D
 * product [D, B*T] @ [B*T, N] instead of B small ones plus a sum, and (3)
 * supports broadcast batch dims, which the stock gradient does not (it returns
 * a gradient of the broadcast shape and the tape rejects it).
 *
 * For C = op(A) @ op(B) with upstream gradient G = dL/dC:
 *   dL/dop(A) = G @ op(B)^T      dL/dop(B) = op(A)^T @ G
 * and dL/dA = (dL/dop(A))^T when A was transposed (same for B). Writing each
 * case out gives the table below (the one tfjs uses), where the tA&&tB case
 * uses (X^T Y^T) = (Y X)^T to need one transpose instead of two.
 */
export function makeMatMulGradConfig(explicitTranspose: () => boolean): tf.GradConfig {
  return {
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
      const g = Array.isArray(dy) ? dy[0] : dy;
      const [a, b] = saved;
      const tA = Boolean(attrs.transposeA);
      const tB = Boolean(attrs.transposeB);
      const explicit = explicitTranspose();
      const mm = (x: tf.Tensor, y: tf.Tensor, tx: boolean, ty: boolean): tf.Tensor =>
        explicit ? tf.matMul(tx ? swapLast(x) : x, ty ? swapLast(y) : y) : tf.matMul(x, y, tx, ty);

      const bIsMatrix = sizeOf(b.shape.slice(0, -2)) === 1;
      let da: () => tf.Tensor;
      let db: () => tf.Tensor;
      if (!tA && !tB) {
        da = () => mm(g, b, false, true);
        db = () => mm(a, g, true, false);
      } else if (!tA && tB) {
        da = () => mm(g, b, false, false);
        db = () => mm(g, a, true, false);
      } else if (tA && !tB) {
        da = () => mm(b, g, false, true);
        db = () => mm(a, g, false, false);
      } else if (explicit) {
        da = () => swapLast(mm(g, b, false, false));
        db = () => swapLast(mm(a, g, false, false));
      } else {
        da = () => mm(b, g, true, true);
        db = () => mm(g, a, true, true);
      }
      if (bIsMatrix && !tA && a.rank > 2) {
        // x[..., M, K] @ W[K, N]: the rows of every batch entry share W, so
        // dW = x2dᵀ @ G2d with x2d = [rows, K], G2d = [rows, N] (one product).
        const k = a.shape[a.rank - 1];
        const n = g.shape[g.rank - 1];
        db = () => {
          const x2 = tf.reshape(a, [-1, k]);
          const g2 = tf.reshape(g, [-1, n]);
          return tB ? mm(g2, x2, true, false) : mm(x2, g2, true, false);
        };
      }
      return {
        a: () => sumToShape(da(), a.shape),
        b: () => sumToShape(db(), b.shape),
      };
    },
  };
}

const sizeOf = (dims: number[]): number => dims.reduce((p, d) => p * d, 1);

function swapLast(x: tf.Tensor): tf.Tensor {
  const perm = [...Array(x.rank).keys()];
  perm[x.rank - 2] = x.rank - 1;
  perm[x.rank - 1] = x.rank - 2;
  return tf.transpose(x, perm);
}

/** Sums a gradient over the batch dims its input was broadcast along. */
function sumToShape(grad: tf.Tensor, shape: number[]): tf.Tensor {
  if (tf.util.arraysEqual(grad.shape, shape)) return grad;
  if (grad.size === sizeOf(shape)) return tf.reshape(grad, shape);
  const lead = grad.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < grad.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && grad.shape[i] !== 1)) axes.push(i);
  }
  return tf.reshape(tf.sum(grad, axes), shape);
}
