// Typed arrays <-> the wire Tensor message (posttrain/v1/tensor.proto).
//
// The wire format is little-endian, row-major, no padding. On a little-endian
// host (every platform Node ships for in practice; checked below) a typed array's
// memory already is that format, so encoding is a Buffer view over the same
// memory and decoding is a typed-array view over the received bytes: no
// per-element loop anywhere. The only copy on decode happens when the received
// bytes do not start at a multiple of the element width (a typed array cannot
// view them there); it is a single memcpy.
import { endianness } from 'node:os';
import { DType, type Tensor } from './gen/posttrain/v1/tensor';

/** The typed array that holds each dtype's elements in TypeScript. */
export interface TypedArrayByDType {
  [DType.DTYPE_FLOAT32]: Float32Array;
  /** Raw IEEE binary16 bits; convert with your own float16 routine (tfjs has none for Uint16). */
  [DType.DTYPE_FLOAT16]: Uint16Array;
  /** Raw bfloat16 bits: the upper 16 bits of the float32 with the same value. */
  [DType.DTYPE_BFLOAT16]: Uint16Array;
  [DType.DTYPE_FLOAT64]: Float64Array;
  [DType.DTYPE_INT8]: Int8Array;
  [DType.DTYPE_UINT8]: Uint8Array;
  [DType.DTYPE_INT16]: Int16Array;
  [DType.DTYPE_INT32]: Int32Array;
  [DType.DTYPE_INT64]: BigInt64Array;
  [DType.DTYPE_UINT32]: Uint32Array;
  /** One byte per element, 0 or 1. */
  [DType.DTYPE_BOOL]: Uint8Array;
}

/** A dtype that a Tensor may carry (every DType except UNSPECIFIED / UNRECOGNIZED). */
export type TensorDType = keyof TypedArrayByDType;

/** Any typed array a Tensor can be built from or decoded into. */
export type TensorTypedArray = TypedArrayByDType[TensorDType];

/** A Tensor message decoded into a typed array that (where possible) shares the message's memory. */
export interface DecodedTensor<D extends TensorDType = TensorDType> {
  dtype: D;
  /** Dimensions as numbers, outermost first. */
  shape: number[];
  /** product(shape) elements, row-major. */
  data: TypedArrayByDType[D];
}

interface DTypeInfo {
  name: string;
  width: number;
  make: (buffer: ArrayBufferLike, byteOffset: number, length: number) => TensorTypedArray;
  /** The typed-array class a value of this dtype must be an instance of. */
  ctor: abstract new (...args: never[]) => TensorTypedArray;
}

const DTYPES: Record<TensorDType, DTypeInfo> = {
  [DType.DTYPE_FLOAT32]: { name: 'DTYPE_FLOAT32', width: 4, ctor: Float32Array, make: (b, o, n) => new Float32Array(b, o, n) },
  [DType.DTYPE_FLOAT16]: { name: 'DTYPE_FLOAT16', width: 2, ctor: Uint16Array, make: (b, o, n) => new Uint16Array(b, o, n) },
  [DType.DTYPE_BFLOAT16]: { name: 'DTYPE_BFLOAT16', width: 2, ctor: Uint16Array, make: (b, o, n) => new Uint16Array(b, o, n) },
  [DType.DTYPE_FLOAT64]: { name: 'DTYPE_FLOAT64', width: 8, ctor: Float64Array, make: (b, o, n) => new Float64Array(b, o, n) },
  [DType.DTYPE_INT8]: { name: 'DTYPE_INT8', width: 1, ctor: Int8Array, make: (b, o, n) => new Int8Array(b, o, n) },
  [DType.DTYPE_UINT8]: { name: 'DTYPE_UINT8', width: 1, ctor: Uint8Array, make: (b, o, n) => new Uint8Array(b, o, n) },
  [DType.DTYPE_INT16]: { name: 'DTYPE_INT16', width: 2, ctor: Int16Array, make: (b, o, n) => new Int16Array(b, o, n) },
  [DType.DTYPE_INT32]: { name: 'DTYPE_INT32', width: 4, ctor: Int32Array, make: (b, o, n) => new Int32Array(b, o, n) },
  [DType.DTYPE_INT64]: { name: 'DTYPE_INT64', width: 8, ctor: BigInt64Array, make: (b, o, n) => new BigInt64Array(b, o, n) },
  [DType.DTYPE_UINT32]: { name: 'DTYPE_UINT32', width: 4, ctor: Uint32Array, make: (b, o, n) => new Uint32Array(b, o, n) },
  [DType.DTYPE_BOOL]: { name: 'DTYPE_BOOL', width: 1, ctor: Uint8Array, make: (b, o, n) => new Uint8Array(b, o, n) },
};

/** Why a tensor was rejected. */
export type TensorErrorReason = 'unknown-dtype' | 'bad-shape' | 'byte-length' | 'dtype-mismatch' | 'big-endian-host';

/**
 * A Tensor (or a typed array bound for one) that does not describe itself
 * consistently. The message names the field, the dtype, the shape and, for a
 * length mismatch, the expected and actual byte lengths; servers map it to
 * INVALID_ARGUMENT.
 */
export class TensorFormatError extends Error {
  override readonly name = 'TensorFormatError';
  constructor(
    message: string,
    readonly reason: TensorErrorReason,
    /** The request field the tensor came from, e.g. "logprobs" or "sequences[3].mask". */
    readonly field: string,
    readonly shape: readonly number[],
    readonly dtype: number,
    readonly expectedBytes?: number,
    readonly actualBytes?: number,
  ) {
    super(message);
  }
}

const HOST_IS_LITTLE_ENDIAN = endianness() === 'LE';

function checkHost(field: string, shape: readonly number[], dtype: number): void {
  if (!HOST_IS_LITTLE_ENDIAN) {
    throw new TensorFormatError(
      `${field}: this host is big-endian; Tensor bytes are little-endian and posttrain does not byte-swap`,
      'big-endian-host',
      field,
      shape,
      dtype,
    );
  }
}

function dtypeLabel(dtype: number): string {
  return (DTYPES as Partial<Record<number, DTypeInfo>>)[dtype]?.name ?? `dtype ${dtype}`;
}

function dtypeInfo(dtype: number, field: string, shape: readonly number[]): DTypeInfo {
  const info = (DTYPES as Partial<Record<number, DTypeInfo>>)[dtype];
  if (info === undefined) {
    throw new TensorFormatError(
      `${field}.dtype: unknown dtype ${dtype}; expected one of ${Object.values(DTYPES)
        .map((d) => d.name)
        .join(', ')}`,
      'unknown-dtype',
      field,
      shape,
      dtype,
    );
  }
  return info;
}

/** Checks every dimension and returns the element count. */
function elementCount(shape: readonly number[], field: string, dtype: number): number {
  let count = 1;
  shape.forEach((dim, i) => {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new TensorFormatError(
        `${field}.shape[${i}]: ${dim} in shape [${shape.join(', ')}] is not a non-negative integer`,
        'bad-shape',
        field,
        shape,
        dtype,
      );
    }
    count *= dim;
  });
  if (!Number.isSafeInteger(count)) {
    throw new TensorFormatError(
      `${field}.shape: [${shape.join(', ')}] has more than 2^53 elements`,
      'bad-shape',
      field,
      shape,
      dtype,
    );
  }
  return count;
}

function checkByteLength(field: string, shape: readonly number[], dtype: number, info: DTypeInfo, actual: number): number {
  const count = elementCount(shape, field, dtype);
  const expected = count * info.width;
  if (expected !== actual) {
    throw new TensorFormatError(
      `${field}.data: ${info.name} tensor of shape [${shape.join(', ')}] needs ${count} x ${info.width} = ${expected} bytes, got ${actual}`,
      'byte-length',
      field,
      shape,
      dtype,
      expected,
      actual,
    );
  }
  return count;
}

function defaultDType(data: TensorTypedArray): TensorDType | undefined {
  if (data instanceof Float32Array) return DType.DTYPE_FLOAT32;
  if (data instanceof Float64Array) return DType.DTYPE_FLOAT64;
  if (data instanceof Int8Array) return DType.DTYPE_INT8;
  if (data instanceof Uint8Array) return DType.DTYPE_UINT8;
  if (data instanceof Int16Array) return DType.DTYPE_INT16;
  if (data instanceof Int32Array) return DType.DTYPE_INT32;
  if (data instanceof BigInt64Array) return DType.DTYPE_INT64;
  if (data instanceof Uint32Array) return DType.DTYPE_UINT32;
  return undefined; // Uint16Array: FLOAT16 or BFLOAT16, the caller must say which
}

/**
 * Builds a Tensor message whose `data` is a Buffer view over `data`'s memory
 * (no copy: later writes to `data` show through until the message is encoded).
 *
 * `dtype` defaults to the array's natural type; it is required for
 * Uint16Array (FLOAT16 or BFLOAT16) and selects BOOL for a Uint8Array.
 * Throws TensorFormatError if the shape is invalid, does not match the
 * element count, or the dtype does not fit the array type.
 *
 * @example encodeTensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3])
 */
export function encodeTensor(
  data: TensorTypedArray,
  shape: readonly number[],
  dtype?: TensorDType,
  field = 'tensor',
): Tensor {
  const chosen = dtype ?? defaultDType(data);
  if (chosen === undefined) {
    throw new TensorFormatError(
      `${field}.dtype: a ${data.constructor.name} may hold DTYPE_FLOAT16 or DTYPE_BFLOAT16; pass the dtype explicitly`,
      'dtype-mismatch',
      field,
      shape,
      DType.DTYPE_UNSPECIFIED,
    );
  }
  const info = dtypeInfo(chosen, field, shape);
  if (!(data instanceof info.ctor)) {
    throw new TensorFormatError(
      `${field}.dtype: ${info.name} needs a ${info.ctor.name}, got a ${data.constructor.name}`,
      'dtype-mismatch',
      field,
      shape,
      chosen,
    );
  }
  checkHost(field, shape, chosen);
  checkByteLength(field, shape, chosen, info, data.byteLength);
  return {
    dtype: chosen,
    shape: [...shape],
    data: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  };
}

/**
 * Decodes a Tensor into a typed array. When `tensor.data` starts at a
 * multiple of the element width the result is a view over the same memory;
 * otherwise the bytes are copied once into a fresh, aligned buffer.
 *
 * Throws TensorFormatError naming `field` for an unknown dtype, a negative or
 * non-integer dimension, or a byte length other than product(shape) * width.
 */
export function decodeTensor(tensor: Tensor, field = 'tensor'): DecodedTensor {
  const shape = tensor.shape.map(Number);
  const info = dtypeInfo(tensor.dtype, field, shape);
  checkHost(field, shape, tensor.dtype);
  const bytes = tensor.data;
  const count = checkByteLength(field, shape, tensor.dtype, info, bytes.byteLength);
  let data: TensorTypedArray;
  if (bytes.byteOffset % info.width === 0) {
    data = info.make(bytes.buffer, bytes.byteOffset, count);
  } else {
    const aligned = new Uint8Array(bytes.byteLength);
    aligned.set(bytes);
    data = info.make(aligned.buffer, 0, count);
  }
  return { dtype: tensor.dtype as TensorDType, shape, data };
}

/**
 * decodeTensor, additionally requiring a given dtype, with the typed array
 * narrowed to it: `decodeTensorAs(res.logprobs, DType.DTYPE_FLOAT32, 'logprobs').data`
 * is a Float32Array.
 */
export function decodeTensorAs<D extends TensorDType>(tensor: Tensor, dtype: D, field = 'tensor'): DecodedTensor<D> {
  if (tensor.dtype !== dtype) {
    throw new TensorFormatError(
      `${field}.dtype: expected ${dtypeLabel(dtype)}, got ${dtypeLabel(tensor.dtype)}`,
      'dtype-mismatch',
      field,
      tensor.shape.map(Number),
      tensor.dtype,
    );
  }
  return decodeTensor(tensor, field) as DecodedTensor<D>;
}

/** Bytes per element of a dtype; throws TensorFormatError for an unknown one. */
export function dtypeByteWidth(dtype: number): number {
  return dtypeInfo(dtype, 'dtype', []).width;
}
