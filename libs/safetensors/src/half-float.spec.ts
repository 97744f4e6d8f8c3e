import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bf16BitsToF32,
  f16BitsToF32,
  f16DecodeTable,
  f32ToBf16Bits,
  f32ToF16Bits,
  f8e4m3BitsToF32,
  f8e5m2BitsToF32,
} from './half-float';

// Expected values computed by hand from the bit layouts (exact: every value
// below is representable in float64 and float32, so the comparisons are exact).
describe('f16BitsToF32', () => {
  const cases: [number, number][] = [
    [0x3c00, 1], // exp 15, mant 0 -> 1.0
    [0xc000, -2], // sign, exp 16 -> -2
    [0x3555, 1365 / 4096], // (1 + 341/1024) * 2^-2 = 0.333251953125
    [0x7bff, 65504], // (1 + 1023/1024) * 2^15, the largest finite f16
    [0x0400, 2 ** -14], // smallest normal
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x0001, 2 ** -24], // smallest subnormal
    [0x8001, -(2 ** -24)],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  for (const [bits, value] of cases) {
    test(`0x${bits.toString(16)} -> ${value}`, () => assert.equal(f16BitsToF32(bits), value));
  }
  test('NaN and signed zeros', () => {
    assert.ok(Number.isNaN(f16BitsToF32(0x7e00)));
    assert.ok(Number.isNaN(f16BitsToF32(0xfc01)));
    assert.ok(Object.is(f16BitsToF32(0x0000), 0));
    assert.ok(Object.is(f16BitsToF32(0x8000), -0));
  });
  test('the decode table agrees with the scalar decoder at float32 precision', () => {
    const table = f16DecodeTable();
    for (const bits of [0x0001, 0x3555, 0x7bff, 0x8000, 0xfc00]) assert.ok(Object.is(table[bits], Math.fround(f16BitsToF32(bits))));
  });
});

describe('f32ToF16Bits', () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519, 0x7bff], // below the midpoint 65520: rounds down
    [65520, 0x7c00], // midpoint between 65504 (odd mantissa) and 65536 (= inf): ties to even -> inf
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000], // tie between 0 and 2^-24: even is 0
    [1.5 * 2 ** -25, 0x0001], // above the midpoint
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units: even is 2
    [1e-8, 0x0000], // below 2^-25 (2.98e-8)
    [1023.5 * 2 ** -24, 0x0400], // tie between largest subnormal (odd) and smallest normal: carries to 0x0400
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1 + 2^-10: even is 1
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02: even is 0x3c02
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie: up
  ];
  for (const [value, bits] of cases) {
    test(`${value} -> 0x${bits.toString(16)}`, () => assert.equal(f32ToF16Bits(value), bits));
  }
  test('-0 and NaN', () => {
    assert.equal(f32ToF16Bits(-0), 0x8000);
    assert.equal(f32ToF16Bits(NaN), 0x7e00);
  });
  test('every finite and infinite f16 value survives f16 -> f32 -> f16', () => {
    for (let bits = 0; bits < 65536; bits++) {
      if ((bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0) continue; // NaN payloads are not preserved
      assert.equal(f32ToF16Bits(f16BitsToF32(bits)), bits, `bits 0x${bits.toString(16)}`);
    }
  });
});

describe('bfloat16', () => {
  test('decoding hand-computed values', () => {
    assert.equal(bf16BitsToF32(0x3f80), 1); // f32 0x3f800000
    assert.equal(bf16BitsToF32(0xc040), -3); // f32 0xc0400000
    assert.equal(bf16BitsToF32(0x4049), 3.140625); // f32 0x40490000 = (1 + 0x49/128) * 2 = 3.140625
    assert.equal(bf16BitsToF32(0x7f7f), (1 + 127 / 128) * 2 ** 127); // largest finite
    assert.equal(bf16BitsToF32(0x0001), 2 ** -133); // f32 0x00010000 = 2^16 * 2^-149, a subnormal
    assert.equal(bf16BitsToF32(0x7f80), Infinity);
    assert.equal(bf16BitsToF32(0xff80), -Infinity);
    assert.ok(Number.isNaN(bf16BitsToF32(0x7fc0)));
    assert.ok(Object.is(bf16BitsToF32(0x8000), -0));
  });
  test('encoding rounds to nearest even', () => {
    assert.equal(f32ToBf16Bits(1), 0x3f80);
    assert.equal(f32ToBf16Bits(Math.PI), 0x4049); // f32 0x40490fdb: low half 0x0fdb < 0x8000 rounds down
    assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80); // f32 0x3f808000: exact tie, 0x3f80 is even
    assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82); // f32 0x3f818000: tie, 0x3f81 odd -> 0x3f82
    assert.equal(f32ToBf16Bits(-0), 0x8000);
    assert.equal(f32ToBf16Bits(Infinity), 0x7f80);
    assert.equal(f32ToBf16Bits(NaN), 0x7fc0);
  });
});

describe('float8', () => {
  test('E4M3 (fn) hand-computed values', () => {
    assert.equal(f8e4m3BitsToF32(0x38), 1); // exp 7, mant 0
    assert.equal(f8e4m3BitsToF32(0x7e), 448); // exp 15, mant 6: 1.75 * 2^8, the largest finite
    assert.equal(f8e4m3BitsToF32(0x01), 2 ** -9); // smallest subnormal: 1/8 * 2^-6
    assert.equal(f8e4m3BitsToF32(0xb8), -1);
    assert.ok(Number.isNaN(f8e4m3BitsToF32(0x7f)));
    assert.ok(Object.is(f8e4m3BitsToF32(0x80), -0));
  });
  test('E5M2 hand-computed values', () => {
    assert.equal(f8e5m2BitsToF32(0x3c), 1); // exp 15, mant 0
    assert.equal(f8e5m2BitsToF32(0x7b), 57344); // exp 30, mant 3: 1.75 * 2^15
    assert.equal(f8e5m2BitsToF32(0x01), 2 ** -16); // subnormal: 1/4 * 2^-14
    assert.equal(f8e5m2BitsToF32(0xfc), -Infinity);
  });
});
