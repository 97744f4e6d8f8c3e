import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from '@posttrain/native-kernels';
import { asWasmBackend, wasmData } from './wasm-internals';

/** The kernel name of the fused one-token attention (registered on wasm with the native kernels). */
export const FUSED_DECODE_ATTENTION = 'PosttrainDecodeAttention';

/** A decoding step's attention operands; see `decodeAttentionNative`. */
export interface DecodeAttentionInputs {
  /** [B, H*E]: the step's query projections, before RoPE. */
  q: tf.Tensor2D;
  /** [B, G*E]: the step's key and value projections (keys before RoPE). */
  k: tf.Tensor2D;
  v: tf.Tensor2D;
  /** RoPE tables at each row's position, B*E floats each (e.g. [B, 1, E]). */
  cos: tf.Tensor;
  sin: tf.Tensor;
  /** [B, G, capacity, E]: the cache; columns [0, column) hold the past, column `column` is written. */
  keys: tf.Tensor4D;
  values: tf.Tensor4D;
  /** Additive key mask, B*(column+1) floats (0 for a visible key, a large negative for a hidden one). */
  bias: tf.Tensor;
}

/**
 * One decoding step's attention for one layer, all heads in one native call on
 * the wasm heap: RoPE on q and k, rope(k) and v written into the cache at
 * `column` IN PLACE, then per query head h (kv head g = floor(h / (H/G)))
 *   out[b, h] = softmax(q_h·K_gᵀ·scale + bias[b])·V_g over cache columns 0..column.
 * Returns out [B, H*E]. The caller owns the cache buffers and must know that no
 * other reader treats column `column` as settled (the model's decode step
 * tracks this); the unfused tfjs formulation is in @posttrain/model. Requires
 * the native kernels on wasm (`nativeKernelsActive()`).
 */
export function decodeAttentionNative(inputs: DecodeAttentionInputs, attrs: { column: number; heads: number; scale: number }): tf.Tensor2D {
  return tf.engine().runKernel(FUSED_DECODE_ATTENTION, { ...inputs }, { ...attrs }) as tf.Tensor2D;
}

const size = (t: tf.TensorInfo): number => tf.util.sizeFromShape(t.shape);

/** The wasm kernel behind FUSED_DECODE_ATTENTION: checks every operand's dtype and size, then one addon call. */
export function makeNativeDecodeAttention(addon: NativeAddon): tf.KernelFunc {
  return (args) => {
    const inputs = args.inputs as unknown as Record<keyof DecodeAttentionInputs, tf.TensorInfo>;
    const { column, heads, scale } = args.attrs as unknown as { column: number; heads: number; scale: number };
    const { keys, values } = inputs;
    if (keys.shape.length !== 4) throw new Error(`${FUSED_DECODE_ATTENTION}: keys has shape [${keys.shape}], expected [B, G, capacity, E]`);
    const [B, G, C, E] = keys.shape;
    if (!Number.isInteger(heads) || heads < 1 || heads % G !== 0) throw new Error(`${FUSED_DECODE_ATTENTION}: heads ${heads} is not a positive multiple of the cache's ${G} kv heads`);
    if (!Number.isInteger(column) || column < 0 || column >= C) throw new Error(`${FUSED_DECODE_ATTENTION}: column ${column} is outside the cache's capacity [0, ${C})`);
    if (E % 2 !== 0) throw new Error(`${FUSED_DECODE_ATTENTION}: head dim ${E} is odd, RoPE needs it even`);
    const expected: Record<keyof DecodeAttentionInputs, number> = {
      q: B * heads * E, k: B * G * E, v: B * G * E, cos: B * E, sin: B * E, keys: B * G * C * E, values: B * G * C * E, bias: B * (column + 1),
    };
    for (const name of Object.keys(expected) as (keyof DecodeAttentionInputs)[]) {
      const t = inputs[name];
      if (t.dtype !== 'float32' || size(t) !== expected[name]) {
        throw new Error(`${FUSED_DECODE_ATTENTION}: ${name} has shape [${t.shape}] (${t.dtype}), expected ${expected[name]} float32 values`);
      }
    }
    if (!tf.util.arraysEqual(values.shape, keys.shape)) throw new Error(`${FUSED_DECODE_ATTENTION}: values has shape [${values.shape}], expected the keys' [${keys.shape}]`);
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput([B, heads * E], 'float32');
    // Offsets only after makeOutput: allocating may grow (and so move) the heap.
    const off = (t: tf.TensorInfo) => wasmData(backend, t).memoryOffset / 4;
    try {
      addon.decodeAttention(backend.wasm.HEAPU8.buffer as ArrayBuffer, off(inputs.q), off(inputs.k), off(inputs.v), off(inputs.cos), off(inputs.sin),
        off(keys), off(values), off(inputs.bias), off(out), B, heads, G, E, C, column, scale);
    } catch (err) {
      backend.disposeData(out.dataId);
      throw err;
    }
    return out;
  };
}
