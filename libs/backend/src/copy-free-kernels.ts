/**
 * Three wasm kernels that tfjs-backend-wasm 4.22 runs far slower than the
 * work they do, measured in one SFT step of the shipped base model (16 rows of
 * 110 tokens, vocabulary 101; `tf.profile`, 546 ms a step on a 2-core host):
 *
 * - `Identity` copies its input into a new buffer. The engine calls it for
 *   every tensor a gradient saves (`saveTensorsForBackwardMode` clones them),
 *   339 times a step, 53 ms. Tensors are immutable, so the CPU and WebGL
 *   backends return the input's buffer with its reference count raised, as
 *   wasm's own `Reshape` does; this does the same.
 * - `Equal` with one operand broadcast along the last axis ([B,T,V] against
 *   [B,T,1]: the gradient of `max` inside every log-sum-exp) runs the generic
 *   broadcasting loop, 18 ms for 178k elements. A JS loop over the heap does
 *   it in well under a millisecond.
 * - `GatherV2` along axis 0 of a matrix (the embedding lookup, 1760 rows of
 *   128) takes 18 ms; copying the rows with `TypedArray.set` takes a fraction
 *   of one.
 *
 * Every result is the stock kernel's, bit for bit (the same comparisons, the
 * same copies); anything outside these cases goes to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { asWasmBackend } from './wasm-internals';

/** `Identity` without the copy: the output shares the input's buffer (reference counted, like `Reshape`). */
export function makeSharedIdentity(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string') return stock(args);
    asWasmBackend(args.backend).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

/**
 * Where `a` and `b` have the same rank and shape except the last axis, on
 * which one of them has size 1: [which operand is broadcast, rows, last axis size].
 */
function lastAxisBroadcast(a: readonly number[], b: readonly number[]): { broadcast: 'a' | 'b'; rows: number; n: number } | null {
  if (a.length !== b.length || a.length === 0) return null;
  const last = a.length - 1;
  for (let i = 0; i < last; i++) if (a[i] !== b[i]) return null;
  const rows = tf.util.sizeFromShape(a.slice(0, last));
  if (b[last] === 1 && a[last] > 1) return { broadcast: 'b', rows, n: a[last] };
  if (a[last] === 1 && b[last] > 1) return { broadcast: 'a', rows, n: b[last] };
  return null;
}

/** `Equal` with a JS loop for the last-axis broadcast; every other case runs `stock`. */
export function makeFastEqual(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const a = args.inputs.a as tf.TensorInfo;
    const b = args.inputs.b as tf.TensorInfo;
    const plan = a.dtype === b.dtype && (a.dtype === 'float32' || a.dtype === 'int32') ? lastAxisBroadcast(a.shape, b.shape) : null;
    if (plan === null) return stock(args);
    const backend = asWasmBackend(args.backend);
    const full = plan.broadcast === 'b' ? a : b;
    const out = backend.makeOutput([...full.shape], 'bool');
    // Views after makeOutput: an allocation may grow (and replace) the heap.
    const o = backend.typedArrayFromHeap(out);
    const f = backend.typedArrayFromHeap(full);
    const s = backend.typedArrayFromHeap(plan.broadcast === 'b' ? b : a);
    const { rows, n } = plan;
    for (let r = 0; r < rows; r++) {
      const v = s[r];
      const base = r * n;
      for (let j = 0; j < n; j++) o[base + j] = f[base + j] === v ? 1 : 0;
    }
    return out;
  };
}

/** `GatherV2` of whole rows (axis 0, no batch dims) of a float32 or int32 tensor by copying them; every other case runs `stock`. */
export function makeRowGather(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const indices = args.inputs.indices as tf.TensorInfo;
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    if (x.shape.length < 1 || tf.util.parseAxisParam(axis, x.shape)[0] !== 0 || (batchDims ?? 0) !== 0 || indices.dtype !== 'int32' || (x.dtype !== 'float32' && x.dtype !== 'int32')) return stock(args);
    const backend = asWasmBackend(args.backend);
    const dimSize = x.shape[0];
    const row = tf.util.sizeFromShape(x.shape.slice(1));
    const idx = backend.typedArrayFromHeap(indices); // read again below: makeOutput may grow (and replace) the heap
    for (let i = 0; i < idx.length; i++) {
      const k = idx[i];
      if (!(k >= 0 && k <= dimSize - 1)) throw new Error(`GatherV2: the index value ${k} is not in [0, ${dimSize - 1}]`);
    }
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    if (row === 0 || idx.length === 0) return out;
    const o = backend.typedArrayFromHeap(out);
    const src = backend.typedArrayFromHeap(x);
    const ids = backend.typedArrayFromHeap(indices);
    for (let i = 0; i < ids.length; i++) o.set(src.subarray(ids[i] * row, ids[i] * row + row), i * row);
    return out;
  };
}
