import { endianness } from 'node:os';
import { SafetensorsError } from './safetensors-error';

/** A float32 tensor to write. */
export interface Float32TensorInput {
  shape: number[];
  data: Float32Array;
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/**
 * Serializes float32 tensors to the safetensors format. Tensors are laid out in
 * name order (as the reference writer does for one dtype); the header is padded
 * with spaces to a multiple of 8 bytes so every tensor's data is 8-byte
 * aligned in the file, which lets the reader return views instead of copies.
 * Throws a SafetensorsError naming the tensor when a shape does not match its data.
 */
export function serializeSafetensors(
  tensors: ReadonlyMap<string, Float32TensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const source = '<serialize>';
  const names = [...tensors.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') {
        throw new SafetensorsError(source, `metadata value "${key}" must be a string, got ${typeof value}`);
      }
    }
    header.__metadata__ = { ...metadata };
  }
  let offset = 0;
  for (const name of names) {
    const tensor = tensors.get(name) as Float32TensorInput;
    if (name === '' || name === '__metadata__') throw new SafetensorsError(source, 'reserved or empty tensor name', name);
    if (!Array.isArray(tensor.shape) || !tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(source, `shape must be non-negative integers, got ${JSON.stringify(tensor.shape)}`, name);
    }
    if (!(tensor.data instanceof Float32Array)) throw new SafetensorsError(source, 'data must be a Float32Array', name);
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    if (elements !== tensor.data.length) {
      throw new SafetensorsError(
        source,
        `shape [${tensor.shape.join(', ')}] has ${elements} elements but data has ${tensor.data.length}`,
        name,
      );
    }
    header[name] = { dtype: 'F32', shape: [...tensor.shape], data_offsets: [offset, offset + 4 * elements] };
    offset += 4 * elements;
  }
  let headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil((8 + headerBytes.length) / 8) * 8 - 8;
  if (padded !== headerBytes.length) {
    const withPadding = new Uint8Array(padded).fill(0x20);
    withPadding.set(headerBytes);
    headerBytes = withPadding;
  }
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let cursor = 8 + headerBytes.length;
  for (const name of names) {
    const data = (tensors.get(name) as Float32TensorInput).data;
    if (LITTLE_ENDIAN_HOST) {
      out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), cursor);
    } else {
      const view = new DataView(out.buffer, cursor, data.byteLength);
      for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i], true);
    }
    cursor += data.byteLength;
  }
  return out;
}
