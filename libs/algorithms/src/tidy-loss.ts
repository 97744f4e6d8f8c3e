import * as tf from '@tensorflow/tfjs-core';
import type { LossOutput } from './loss-output';

/**
 * Reads a record of scalar tensors back as plain numbers with a single
 * device read (one stack + dataSync instead of one sync per metric). Call it
 * inside a tf.tidy; it disposes nothing it was given.
 */
export function readScalars<K extends string>(scalars: Record<K, tf.Tensor>): Record<K, number> {
  const keys = Object.keys(scalars) as K[];
  const out = {} as Record<K, number>;
  if (keys.length === 0) return out;
  const stacked = tf.stack(keys.map((k) => tf.reshape(scalars[k], [])));
  const values = stacked.dataSync();
  stacked.dispose();
  keys.forEach((k, i) => {
    out[k] = values[i];
  });
  return out;
}

/**
 * Runs `compute` inside tf.tidy, reads its metric tensors as numbers and keeps
 * only the loss: every intermediate, metric tensors included, is disposed.
 */
export function tidyLoss<K extends string>(compute: () => { loss: tf.Scalar; metrics: Record<K, tf.Tensor> }): LossOutput<K> {
  let metrics = {} as Record<K, number>;
  const loss = tf.tidy(() => {
    const out = compute();
    metrics = readScalars(out.metrics);
    return out.loss;
  });
  return { loss, metrics };
}
