import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseSafetensors, parseSafetensorsHeader } from './parse-safetensors';
import { SafetensorsError } from './safetensors-error';
import { serializeSafetensors } from './serialize-safetensors';

/** Assembles a file by hand: u64 LE header length, header text, raw data bytes. */
function assemble(header: string, data: number[], headerLength?: number): Uint8Array {
  const text = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

function entry(dtype: string, shape: number[], begin: number, end: number): string {
  return JSON.stringify({ dtype, shape, data_offsets: [begin, end] });
}

describe('parseSafetensors on hand-assembled bytes', () => {
  test('F32, F16, BF16, I32 and I64 tensors decode to the known values', () => {
    const header =
      `{"__metadata__":{"format":"pt"},` +
      `"a":${entry('F32', [2], 0, 8)},"b":${entry('F16', [3], 8, 14)},"c":${entry('BF16', [2], 14, 18)},` +
      `"d":${entry('I32', [1], 18, 22)},"e":${entry('I64', [1], 22, 30)}}`;
    const data = [
      ...[0x00, 0x00, 0x80, 0x3f], // F32 1.0 = 0x3f800000, little-endian
      ...[0x00, 0x00, 0x20, 0xc0], // F32 -2.5 = 0xc0200000
      ...[0x00, 0x3c], // F16 1.0 = 0x3c00
      ...[0x01, 0x00], // F16 2^-24 = 0x0001 (subnormal)
      ...[0x00, 0xfc], // F16 -inf = 0xfc00
      ...[0x49, 0x40], // BF16 3.140625 = 0x4049
      ...[0x00, 0x80], // BF16 -0 = 0x8000
      ...[0xfe, 0xff, 0xff, 0xff], // I32 -2
      ...[0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00], // I64 2^24
    ];
    const { tensors, metadata } = parseSafetensors(assemble(header, data));
    assert.deepEqual(metadata, { format: 'pt' });
    assert.deepEqual([...tensors.keys()], ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(tensors.get('a'), { dtype: 'F32', shape: [2], data: new Float32Array([1, -2.5]) });
    assert.deepEqual([...(tensors.get('b')?.data ?? [])], [1, Math.fround(2 ** -24), -Infinity]);
    const c = tensors.get('c')?.data ?? new Float32Array();
    assert.equal(c[0], 3.140625);
    assert.ok(Object.is(c[1], -0));
    assert.deepEqual([...(tensors.get('d')?.data ?? [])], [-2]);
    assert.deepEqual([...(tensors.get('e')?.data ?? [])], [2 ** 24]);
  });

  test('trailing-space padding of the header is accepted; empty header "{}" is a valid empty file', () => {
    const padded = parseSafetensors(assemble(`{"x":${entry('F32', [1], 0, 4)}}    `, [0, 0, 0x80, 0xbf]));
    assert.deepEqual([...(padded.tensors.get('x')?.data ?? [])], [-1]);
    assert.equal(parseSafetensors(assemble('{}', [])).tensors.size, 0);
  });

  test('aligned F32 data is a view into the buffer; unaligned data is copied', () => {
    // Header padded to a multiple of 8 -> data 8-aligned; one more space -> data at an odd offset.
    let h = `{"x":${entry('F32', [1], 0, 4)}}`;
    h = h.padEnd(Math.ceil(h.length / 8) * 8, ' ');
    const aligned = assemble(h, [0, 0, 0x40, 0x40]); // 3.0 = 0x40400000
    const a = parseSafetensors(aligned).tensors.get('x')?.data;
    assert.equal(a?.buffer, aligned.buffer);
    assert.equal(a?.[0], 3);
    const unaligned = assemble(`${h} `, [0, 0, 0x40, 0x40]);
    const u = parseSafetensors(unaligned).tensors.get('x')?.data;
    assert.notEqual(u?.buffer, unaligned.buffer);
    assert.equal(u?.[0], 3);
    // A sub-array whose own byteOffset makes the data unaligned is still decoded correctly.
    const shifted = new Uint8Array(aligned.length + 1);
    shifted.set(aligned, 1);
    assert.equal(parseSafetensors(shifted.subarray(1)).tensors.get('x')?.data[0], 3);
  });
});

describe('round trip through serializeSafetensors', () => {
  test('tensors and metadata come back bit-exact, including -0, NaN, inf and empty tensors', () => {
    const tensors = new Map([
      ['layer.0.weight', { shape: [2, 3], data: new Float32Array([1.5, -0, NaN, Infinity, -1e-40, 3.4e38]) }],
      ['bias', { shape: [3], data: new Float32Array([0.1, 0.2, 0.3]) }],
      ['empty', { shape: [0, 4], data: new Float32Array(0) }],
      ['scalar', { shape: [], data: new Float32Array([7]) }],
    ]);
    const bytes = serializeSafetensors(tensors, { format: 'pt', note: 'x' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + headerLength) % 8, 0, 'data starts 8-byte aligned');
    const parsed = parseSafetensors(bytes, 'rt');
    assert.deepEqual(parsed.metadata, { format: 'pt', note: 'x' });
    assert.deepEqual([...parsed.tensors.keys()], ['bias', 'empty', 'layer.0.weight', 'scalar']);
    for (const [name, t] of tensors) {
      const got = parsed.tensors.get(name);
      assert.equal(got?.dtype, 'F32');
      assert.deepEqual(got?.shape, t.shape);
      assert.deepEqual(new Uint8Array(got?.data.slice().buffer ?? []), new Uint8Array(t.data.buffer), name);
    }
  });

  test('serializing rejects a shape that does not match the data, naming the tensor', () => {
    assert.throws(
      () => serializeSafetensors(new Map([['w', { shape: [2, 2], data: new Float32Array(3) }]])),
      /tensor "w": shape \[2, 2\] has 4 elements but data has 3/,
    );
    assert.throws(() => serializeSafetensors(new Map([['__metadata__', { shape: [1], data: new Float32Array(1) }]])), /reserved/);
  });
});

describe('corrupt files get specific errors', () => {
  const f32x2 = [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40];
  const cases: { name: string; bytes: () => Uint8Array; error: RegExp }[] = [
    { name: 'shorter than 8 bytes', bytes: () => new Uint8Array(5), error: /file is 5 bytes, too short/ },
    {
      name: 'truncated file (data shorter than the offsets)',
      bytes: () => assemble(`{"w":${entry('F32', [2], 0, 8)}}`, f32x2.slice(0, 6)),
      error: /tensor "w": data_offsets \[0, 8\] run past the end of the data buffer \(6 bytes\)/,
    },
    {
      name: 'header length past the end of the file',
      bytes: () => assemble('{}', [], 500),
      error: /header length 500 runs past the end of the file \(10 bytes/,
    },
    { name: 'absurd header length', bytes: () => assemble('{}', [], 2 ** 40), error: /exceeds the 100000000-byte limit/ },
    { name: 'header length below 2', bytes: () => assemble('{', [], 1), error: /header length is 1, expected at least 2/ },
    { name: 'bad JSON', bytes: () => assemble('{"w": {"dtype": "F32",', []), error: /header is not valid JSON/ },
    { name: 'header not an object', bytes: () => assemble('{}', []).fill(0x5b, 8, 9), error: /header must start with "\{"/ },
    { name: 'invalid UTF-8', bytes: () => assemble('{}', []).fill(0xff, 9, 10), error: /not valid UTF-8/ },
    {
      name: 'unknown dtype',
      bytes: () => assemble(`{"w":${entry('F33', [2], 0, 8)}}`, f32x2),
      error: /tensor "w": unknown dtype "F33"/,
    },
    {
      name: 'negative shape',
      bytes: () => assemble(`{"w":${entry('F32', [-2], 0, 8)}}`, f32x2),
      error: /tensor "w": "shape" must be an array of non-negative integers, got \[-2\]/,
    },
    {
      name: 'fractional shape',
      bytes: () => assemble(`{"w":${entry('F32', [1.5], 0, 8)}}`, f32x2),
      error: /tensor "w": "shape" must be an array of non-negative integers/,
    },
    {
      name: 'missing data_offsets',
      bytes: () => assemble('{"w":{"dtype":"F32","shape":[2]}}', f32x2),
      error: /tensor "w": "data_offsets" must be \[begin, end\]/,
    },
    {
      name: 'begin after end',
      bytes: () => assemble(`{"w":${entry('F32', [0], 8, 0)}}`, f32x2),
      error: /tensor "w": data_offsets \[8, 0\]: begin is after end/,
    },
    {
      name: 'wrong byte length for the shape',
      bytes: () => assemble(`{"w":${entry('F32', [3], 0, 8)}}`, f32x2),
      error: /tensor "w": byte length 8 .* does not match shape \[3\] x 4 bytes \(F32\) = 12/,
    },
    {
      name: 'overlapping offsets',
      bytes: () => assemble(`{"a":${entry('F32', [2], 0, 8)},"b":${entry('F32', [1], 4, 8)}}`, f32x2),
      error: /tensor "b": data_offsets \[4, 8\] overlap tensor "a"/,
    },
    {
      name: 'hole between tensors',
      bytes: () => assemble(`{"a":${entry('F32', [1], 0, 4)},"b":${entry('F16', [1], 6, 8)}}`, f32x2),
      error: /tensor "b": hole in the data buffer: bytes \[4, 6\) belong to no tensor/,
    },
    {
      name: 'trailing bytes after the last tensor',
      bytes: () => assemble(`{"a":${entry('F32', [1], 0, 4)}}`, f32x2),
      error: /data buffer has 8 bytes but the tensors cover only \[0, 4\)/,
    },
    {
      name: 'duplicate tensor name',
      bytes: () => assemble(`{"a":${entry('F32', [1], 0, 4)},"a":${entry('F32', [1], 4, 8)}}`, f32x2),
      error: /tensor "a": duplicate tensor name/,
    },
    {
      name: 'metadata value not a string',
      bytes: () => assemble('{"__metadata__":{"step":3}}', []),
      error: /"__metadata__.step" must be a string, got 3/,
    },
    { name: 'entry not an object', bytes: () => assemble('{"w":[1,2]}', []), error: /tensor "w": entry must be an object/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.throws(
        () => parseSafetensors(c.bytes(), 'ckpt/model.safetensors'),
        (err: unknown) => {
          assert.ok(err instanceof SafetensorsError, `expected SafetensorsError, got ${String(err)}`);
          assert.match(err.message, /^ckpt\/model\.safetensors: /);
          assert.match(err.message, c.error);
          return true;
        },
      );
    });
  }

  test('a nested key that repeats a tensor name is not a duplicate', () => {
    const h = parseSafetensorsHeader(assemble(`{"__metadata__":{"a":"x"},"a":${entry('F32', [2], 0, 8)}}`, f32x2));
    assert.deepEqual(h.entries.map((e) => e.name), ['a']);
  });

  test('every truncation of a valid file is rejected, none crashes or decodes', () => {
    const good = serializeSafetensors(new Map([['w', { shape: [4], data: new Float32Array([1, 2, 3, 4]) }]]), { k: 'v' });
    for (let len = 0; len < good.length; len++) {
      assert.throws(() => parseSafetensors(good.slice(0, len), 'cut'), SafetensorsError, `length ${len}`);
    }
  });
});
