import * as tf from '@tensorflow/tfjs-core';
import { asWasmBackend } from './wasm-internals';

/**
 * `UnsortedSegmentSum` for the wasm backend, which ships without it; the
 * `GatherV2` gradient (embedding lookups) needs it. A plain loop over the wasm
 * heap: out[segmentIds[i], j] += x[i, j]. It reads memory once and writes the
 * output once, so it runs at memory speed: no need for native code.
 *
 * Semantics follow TensorFlow: `segmentIds` has the shape of a prefix of
 * `x.shape`; the output is [numSegments, ...x.shape after that prefix];
 * negative ids are dropped; ids >= numSegments are an error.
 */
export const unsortedSegmentSumWasm: tf.KernelFunc = ({ inputs, backend: rawBackend, attrs }) => {
  const x = inputs.x as tf.TensorInfo;
  const segmentIds = inputs.segmentIds as tf.TensorInfo;
  const numSegments = Number(attrs?.numSegments);
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`UnsortedSegmentSum: numSegments must be a non-negative integer, got ${String(attrs?.numSegments)}`);
  }
  const idShape = segmentIds.shape;
  if (idShape.length > x.shape.length || idShape.some((d, i) => d !== x.shape[i])) {
    throw new Error(`UnsortedSegmentSum: segmentIds shape [${idShape}] must be a prefix of x shape [${x.shape}]`);
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum on wasm: x dtype must be float32 or int32, got ${x.dtype}`);
  }
  if (segmentIds.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum: segmentIds dtype must be int32, got ${segmentIds.dtype}`);
  }
  const backend = asWasmBackend(rawBackend);
  const innerShape = x.shape.slice(idShape.length);
  const inner = innerShape.reduce((p, d) => p * d, 1);
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  // Views are taken after makeOutput: an allocation may grow (and replace) the heap.
  const outValues = backend.typedArrayFromHeap(out);
  const xValues = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  outValues.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0) continue;
    if (s >= numSegments) {
      backend.disposeData(out.dataId);
      throw new Error(`UnsortedSegmentSum: segmentIds[${i}] = ${s} is not in [0, ${numSegments})`);
    }
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) outValues[dst + j] += xValues[src + j];
  }
  return out;
};
