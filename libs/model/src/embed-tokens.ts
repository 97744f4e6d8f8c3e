/**
 * Token embedding lookup with a gradient that works on every backend.
 *
 * tf.gather's gradient needs the UnsortedSegmentSum kernel, which the wasm
 * backend does not register. Where the kernel exists we use it; elsewhere the
 * gradient (a scatter-add of the output gradient rows into the table rows) is
 * computed on the host, which is exact and cheap next to the matrix products.
 */
import * as tf from '@tensorflow/tfjs-core';

function hasSegmentSum(): boolean {
  return tf.getKernel('UnsortedSegmentSum', tf.getBackend()) !== undefined;
}

/**
 * table [V, D], ids (flat, values in [0, V)) -> [ids.length, D].
 * `hostGradient` forces the host-side scatter-add even where the kernel exists (tests use it).
 */
export function embedTokens(table: tf.Tensor2D, ids: Int32Array, hostGradient = false): tf.Tensor2D {
  // Without a gradient tape (inference) the gradient wrapper only costs time: the same gather.
  if (!tf.engine().isTapeOn()) return tf.gather(table, tf.tensor1d(ids, 'int32'));
  const [vocab, dim] = table.shape;
  const f = (t: tf.Tensor, save: tf.GradSaveFunc) => {
    save([]);
    const idx = tf.tensor1d(ids, 'int32');
    return {
      value: tf.gather(t, idx),
      gradFunc: (dy: tf.Tensor) => {
        if (!hostGradient && hasSegmentSum()) return [tf.unsortedSegmentSum(dy, tf.tensor1d(ids, 'int32'), vocab)];
        const g = dy.dataSync();
        const out = new Float32Array(vocab * dim);
        for (let i = 0; i < ids.length; i++) {
          const dst = ids[i] * dim;
          const src = i * dim;
          for (let j = 0; j < dim; j++) out[dst + j] += g[src + j];
        }
        return [tf.tensor2d(out, [vocab, dim])];
      },
    };
  };
  const op = tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (t: tf.Tensor) => tf.Tensor;
  return op(table) as tf.Tensor2D;
}
