// IEEE 754 binary16 (F16) and bfloat16 (BF16) <-> binary32 conversions.
//
// F16:  1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
//       exponent 0 -> subnormal, value = mantissa * 2^-24; exponent 31 -> inf / NaN.
// BF16: the upper 16 bits of an F32 (1 sign, 8 exponent, 7 mantissa), so widening
//       is a shift and narrowing is a rounding of the low 16 bits.
// Narrowing rounds to nearest, ties to even, as numpy / torch do.

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Decodes the 16 bits of an IEEE binary16 value to a number. */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero or subnormal; keeps -0
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Encodes a number as IEEE binary16 bits (round to nearest even; overflow -> inf). */
export function f32ToF16Bits(value: number): number {
  scratchF32[0] = value;
  const b = scratchU32[0];
  const sign = (b >>> 16) & 0x8000;
  const exponent = (b >>> 23) & 0xff;
  const mantissa = b & 0x7fffff;
  if (exponent === 0xff) return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13); // inf / quiet NaN
  const e = exponent - 127 + 15; // rebiased exponent
  if (e >= 0x1f) return sign | 0x7c00; // too large: inf
  if (e <= 0) {
    // F16 subnormal: m16 = value * 2^24 = (1.mantissa * 2^23) * 2^(e - 14), i.e. a right shift by 14 - e.
    if (e < -11) return sign; // below half the smallest subnormal (2^-25): rounds to zero
    const full = mantissa | 0x800000;
    const shift = 14 - e;
    let m = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && m & 1)) m += 1; // may carry into the smallest normal, which encodes correctly
    return sign | m;
  }
  let h = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h += 1; // a carry into the exponent (even up to inf) is correct
  return sign | h;
}

/** Decodes the 16 bits of a bfloat16 value to a number. */
export function bf16BitsToF32(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0];
}

/** Encodes a number as bfloat16 bits (round to nearest even; NaN stays a quiet NaN). */
export function f32ToBf16Bits(value: number): number {
  scratchF32[0] = value;
  const b = scratchU32[0];
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

let f16Table: Float32Array | undefined;

/** All 65536 F16 values as F32, built once: decoding a tensor is then one lookup per element. */
export function f16DecodeTable(): Float32Array {
  if (f16Table === undefined) {
    const table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) table[bits] = f16BitsToF32(bits);
    f16Table = table;
  }
  return f16Table;
}

/** Decodes an F8 E4M3 ("fn": bias 7, no infinities, S.1111.111 is NaN) byte to a number. */
export function f8e4m3BitsToF32(bits: number): number {
  const sign = bits & 0x80 ? -1 : 1;
  const exponent = (bits >>> 3) & 0xf;
  const mantissa = bits & 0x7;
  if (exponent === 0xf && mantissa === 0x7) return NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -9;
  return sign * (1 + mantissa / 8) * 2 ** (exponent - 7);
}

/** Decodes an F8 E5M2 byte to a number: it is the upper byte of an F16. */
export function f8e5m2BitsToF32(bits: number): number {
  return f16BitsToF32((bits & 0xff) << 8);
}
