import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DType, Tensor } from './gen/posttrain/v1/tensor';
import {
  TensorFormatError,
  decodeTensor,
  decodeTensorAs,
  dtypeByteWidth,
  encodeTensor,
  type TensorDType,
  type TensorTypedArray,
} from './tensor';

/**
 * Reference serialisation, written independently of tensor.ts: one DataView
 * write per element with an explicit little-endian flag.
 */
function referenceBytes(dtype: TensorDType, values: readonly (number | bigint)[]): Uint8Array {
  const width = { 1: 4, 2: 2, 3: 2, 4: 8, 5: 1, 6: 1, 7: 2, 8: 4, 9: 8, 10: 4, 11: 1 }[dtype];
  const view = new DataView(new ArrayBuffer(values.length * width));
  values.forEach((v, i) => {
    const o = i * width;
    switch (dtype) {
      case DType.DTYPE_FLOAT32: view.setFloat32(o, Number(v), true); break;
      case DType.DTYPE_FLOAT16:
      case DType.DTYPE_BFLOAT16: view.setUint16(o, Number(v), true); break;
      case DType.DTYPE_FLOAT64: view.setFloat64(o, Number(v), true); break;
      case DType.DTYPE_INT8: view.setInt8(o, Number(v)); break;
      case DType.DTYPE_UINT8:
      case DType.DTYPE_BOOL: view.setUint8(o, Number(v)); break;
      case DType.DTYPE_INT16: view.setInt16(o, Number(v), true); break;
      case DType.DTYPE_INT32: view.setInt32(o, Number(v), true); break;
      case DType.DTYPE_INT64: view.setBigInt64(o, BigInt(v), true); break;
      case DType.DTYPE_UINT32: view.setUint32(o, Number(v), true); break;
    }
  });
  return new Uint8Array(view.buffer);
}

interface Case {
  dtype: TensorDType;
  make: () => TensorTypedArray;
  values: (number | bigint)[];
  explicit: boolean; // whether encodeTensor needs the dtype spelled out
}

// Values chosen to exercise sign, the top bit and non-integers where the type has them.
const CASES: Case[] = [
  { dtype: DType.DTYPE_FLOAT32, values: [1.5, -2, 0.25, Math.fround(3e38), -0, Math.fround(1e-30)], make: () => new Float32Array([1.5, -2, 0.25, 3e38, -0, 1e-30]), explicit: false },
  // 0x3c00 = 1.0 and 0xc000 = -2.0 in binary16; 0x7c00 = +inf.
  { dtype: DType.DTYPE_FLOAT16, values: [0x3c00, 0xc000, 0x7c00, 0, 1, 0xffff], make: () => new Uint16Array([0x3c00, 0xc000, 0x7c00, 0, 1, 0xffff]), explicit: true },
  // 0x3f80 = 1.0 and 0xc000 = -2.0 in bfloat16 (the top halves of the float32 bits).
  { dtype: DType.DTYPE_BFLOAT16, values: [0x3f80, 0xc000, 0, 0x7f80, 2, 3], make: () => new Uint16Array([0x3f80, 0xc000, 0, 0x7f80, 2, 3]), explicit: true },
  { dtype: DType.DTYPE_FLOAT64, values: [Math.PI, -1e300, 0, 5e-324, 2, -3], make: () => new Float64Array([Math.PI, -1e300, 0, 5e-324, 2, -3]), explicit: false },
  { dtype: DType.DTYPE_INT8, values: [-128, 127, 0, -1, 5, 6], make: () => new Int8Array([-128, 127, 0, -1, 5, 6]), explicit: false },
  { dtype: DType.DTYPE_UINT8, values: [0, 255, 128, 1, 2, 3], make: () => new Uint8Array([0, 255, 128, 1, 2, 3]), explicit: false },
  { dtype: DType.DTYPE_INT16, values: [-32768, 32767, 0, -1, 256, 7], make: () => new Int16Array([-32768, 32767, 0, -1, 256, 7]), explicit: false },
  { dtype: DType.DTYPE_INT32, values: [-2147483648, 2147483647, 0, -1, 50256, 7], make: () => new Int32Array([-2147483648, 2147483647, 0, -1, 50256, 7]), explicit: false },
  {
    dtype: DType.DTYPE_INT64,
    values: [-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 40n, 7n],
    make: () => new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 40n, 7n]),
    explicit: false,
  },
  { dtype: DType.DTYPE_UINT32, values: [0, 4294967295, 2147483648, 1, 2, 3], make: () => new Uint32Array([0, 4294967295, 2147483648, 1, 2, 3]), explicit: false },
  { dtype: DType.DTYPE_BOOL, values: [1, 0, 0, 1, 1, 0], make: () => new Uint8Array([1, 0, 0, 1, 1, 0]), explicit: true },
];

function catchTensorError(fn: () => unknown): TensorFormatError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TensorFormatError, `expected TensorFormatError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a TensorFormatError, nothing was thrown');
}

describe('encodeTensor / decodeTensor round trip', () => {
  for (const c of CASES) {
    test(`${DType[c.dtype]} [2, 3]: bytes are little-endian row-major and survive the wire`, () => {
      const arr = c.make();
      const t = encodeTensor(arr, [2, 3], c.explicit ? c.dtype : undefined);
      assert.equal(t.dtype, c.dtype);
      assert.deepEqual(t.shape, [2, 3]);
      assert.deepEqual(new Uint8Array(t.data), referenceBytes(c.dtype, c.values));
      assert.equal(dtypeByteWidth(c.dtype), t.data.byteLength / 6);

      const wire = Tensor.decode(Tensor.encode(t).finish());
      const back = decodeTensor(wire, 'x');
      assert.equal(back.dtype, c.dtype);
      assert.deepEqual(back.shape, [2, 3]);
      assert.equal(back.data.constructor, arr.constructor);
      assert.deepEqual([...back.data], c.values);
    });
  }

  test('a scalar (empty shape) holds one element; a zero-size dimension holds none', () => {
    const s = decodeTensorAs(encodeTensor(new Float32Array([4.5]), []), DType.DTYPE_FLOAT32);
    assert.deepEqual(s.shape, []);
    assert.deepEqual([...s.data], [4.5]);
    const empty = decodeTensor(encodeTensor(new Int32Array(0), [3, 0, 2]));
    assert.deepEqual(empty.shape, [3, 0, 2]);
    assert.equal(empty.data.length, 0);
  });
});

describe('zero copy', () => {
  test('encodeTensor returns a Buffer view over the typed array memory', () => {
    const backing = new Float32Array(8);
    const arr = backing.subarray(2, 6); // a view with a non-zero byte offset
    arr.set([1, 2, 3, 4]);
    const t = encodeTensor(arr, [4]);
    assert.equal(t.data.buffer, backing.buffer);
    assert.equal(t.data.byteOffset, 8);
    arr[0] = 42; // a later write shows through: same memory
    assert.equal(new DataView(t.data.buffer, t.data.byteOffset).getFloat32(0, true), 42);
  });

  test('decodeTensor returns a view over aligned bytes', () => {
    for (const c of CASES) {
      const bytes = Buffer.from(referenceBytes(c.dtype, c.values)); // a fresh copy, offset aligned by Node
      const wire: Tensor = { dtype: c.dtype, shape: [6], data: bytes };
      const out = decodeTensor(wire);
      if (bytes.byteOffset % dtypeByteWidth(c.dtype) === 0) {
        assert.equal(out.data.buffer, bytes.buffer, DType[c.dtype]);
        assert.equal(out.data.byteOffset, bytes.byteOffset, DType[c.dtype]);
      }
    }
    const ab = new ArrayBuffer(64);
    const data = Buffer.from(ab, 16, 24); // 16 is aligned for every width
    new Float64Array(ab, 16, 3).set([1, 2, 3]);
    const out = decodeTensorAs({ dtype: DType.DTYPE_FLOAT64, shape: [3], data }, DType.DTYPE_FLOAT64);
    assert.equal(out.data.buffer, ab);
    out.data[1] = -7; // writes land in the message's memory
    assert.equal(new Float64Array(ab, 16, 3)[1], -7);
  });
});

describe('misaligned input', () => {
  for (const c of CASES.filter((x) => dtypeByteWidth(x.dtype) > 1)) {
    test(`${DType[c.dtype]} at byte offset 1 is copied once into aligned memory`, () => {
      const ref = referenceBytes(c.dtype, c.values);
      const ab = new ArrayBuffer(ref.byteLength + 1);
      new Uint8Array(ab).set(ref, 1);
      const data = Buffer.from(ab, 1, ref.byteLength);
      const out = decodeTensor({ dtype: c.dtype, shape: [3, 2], data }, 'm');
      assert.notEqual(out.data.buffer, ab);
      assert.equal(out.data.byteOffset % dtypeByteWidth(c.dtype), 0);
      assert.deepEqual([...out.data], c.values);
    });
  }
});

describe('rejections', () => {
  const good = (): Tensor => ({ dtype: DType.DTYPE_FLOAT32, shape: [2, 3], data: Buffer.alloc(24) });

  test('byte length that does not match the shape names field, shape, expected and actual bytes', () => {
    const e = catchTensorError(() => decodeTensor({ ...good(), data: Buffer.alloc(20) }, 'logprobs'));
    assert.equal(e.reason, 'byte-length');
    assert.equal(e.field, 'logprobs');
    assert.deepEqual(e.shape, [2, 3]);
    assert.equal(e.expectedBytes, 24); // 2 * 3 elements * 4 bytes
    assert.equal(e.actualBytes, 20);
    assert.match(e.message, /^logprobs\.data: DTYPE_FLOAT32 tensor of shape \[2, 3\] needs 6 x 4 = 24 bytes, got 20$/);
  });

  test('typed array whose length does not match the shape is rejected on encode', () => {
    const e = catchTensorError(() => encodeTensor(new Int32Array(5), [2, 3], undefined, 'mask'));
    assert.equal(e.reason, 'byte-length');
    assert.equal(e.expectedBytes, 24);
    assert.equal(e.actualBytes, 20);
    assert.match(e.message, /^mask\.data:/);
  });

  test('unknown and unspecified dtypes', () => {
    for (const dtype of [DType.DTYPE_UNSPECIFIED, DType.UNRECOGNIZED, 99]) {
      const e = catchTensorError(() => decodeTensor({ ...good(), dtype }, 'weights'));
      assert.equal(e.reason, 'unknown-dtype');
      assert.equal(e.dtype, dtype);
      assert.match(e.message, new RegExp(`^weights\\.dtype: unknown dtype ${dtype}; expected one of DTYPE_FLOAT32, `));
    }
    assert.throws(() => dtypeByteWidth(0), TensorFormatError);
  });

  test('negative, fractional and unsafe dimensions', () => {
    for (const [shape, index] of [[[2, -3], 1], [[-1], 0], [[1.5, 4], 0]] as const) {
      const e = catchTensorError(() => decodeTensor({ ...good(), shape: [...shape] }, 't'));
      assert.equal(e.reason, 'bad-shape');
      assert.deepEqual(e.shape, shape);
      assert.match(e.message, new RegExp(`^t\\.shape\\[${index}\\]: `));
    }
    const huge = catchTensorError(() => decodeTensor({ ...good(), shape: [2 ** 30, 2 ** 30] }));
    assert.equal(huge.reason, 'bad-shape');
    assert.equal(catchTensorError(() => encodeTensor(new Float32Array(6), [6, -1])).reason, 'bad-shape');
  });

  test('dtype that does not fit the array, and ambiguous Uint16Array', () => {
    assert.equal(catchTensorError(() => encodeTensor(new Uint16Array(2), [2])).reason, 'dtype-mismatch');
    assert.equal(catchTensorError(() => encodeTensor(new Int8Array(2), [2], DType.DTYPE_BOOL)).reason, 'dtype-mismatch');
    assert.equal(catchTensorError(() => encodeTensor(new Float32Array(2), [2], DType.DTYPE_INT32)).reason, 'dtype-mismatch');
    const e = catchTensorError(() => decodeTensorAs(good(), DType.DTYPE_INT32, 'ids'));
    assert.equal(e.reason, 'dtype-mismatch');
    assert.equal(e.message, 'ids.dtype: expected DTYPE_INT32, got DTYPE_FLOAT32');
  });
});
