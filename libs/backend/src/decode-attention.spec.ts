// The fused one-token attention kernel (native) against a float64 loop: the
// output, the cache column it writes in place, and the columns it must leave
// alone. The model's tfjs formulation is checked against it in
// libs/model/src/decode-attention.spec.ts.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { loadNativeKernels } from '@posttrain/native-kernels';
import { decodeAttentionNative, initBackend, nativeKernelsActive } from './index';
import { assertClose, values } from './mat-mul-reference';

const { addon, status } = loadNativeKernels();
const skip = addon === null && process.env.POSTTRAIN_NATIVE !== '1' ? `native addon absent: ${status.reason}` : false;

interface Case { B: number; H: number; G: number; E: number; C: number; P: number }

/** x*cos + rotate_half(x)*sin, each product and the sum rounded to float32 as the tfjs ops do. */
function rope(x: Float32Array, c: Float32Array, s: Float32Array): Float32Array {
  const e = x.length;
  const h = e / 2;
  const out = new Float32Array(e);
  for (let j = 0; j < e; j++) {
    const rot = j < h ? -x[j + h] : x[j - h];
    out[j] = Math.fround(Math.fround(x[j] * c[j]) + Math.fround(rot * s[j]));
  }
  return out;
}

function inputs({ B, H, G, E, C, P }: Case, seed: number) {
  const bias = new Float32Array(B * (P + 1));
  // Hide every third key of each row (never the step's own), as padding would.
  for (let b = 0; b < B; b++) for (let k = 0; k < P; k++) if ((k + b) % 3 === 2) bias[b * (P + 1) + k] = -1e9;
  return {
    q: values(B * H * E, seed), k: values(B * G * E, seed + 1), v: values(B * G * E, seed + 2),
    cos: values(B * E, seed + 3), sin: values(B * E, seed + 4),
    keys: values(B * G * C * E, seed + 5), values: values(B * G * C * E, seed + 6), bias,
  };
}

/** float64 attention over columns 0..P of the cache with the step's rotated key and value at column P. */
function reference(d: Case, x: ReturnType<typeof inputs>, scale: number) {
  const { B, H, G, E, C, P } = d;
  const R = H / G;
  const keys = Float32Array.from(x.keys);
  const vals = Float32Array.from(x.values);
  const out = new Float64Array(B * H * E);
  for (let b = 0; b < B; b++) {
    const c = x.cos.subarray(b * E, (b + 1) * E);
    const s = x.sin.subarray(b * E, (b + 1) * E);
    for (let g = 0; g < G; g++) {
      const base = (b * G + g) * C * E;
      keys.set(rope(x.k.subarray((b * G + g) * E, (b * G + g + 1) * E), c, s), base + P * E);
      vals.set(x.v.subarray((b * G + g) * E, (b * G + g + 1) * E), base + P * E);
      for (let r = 0; r < R; r++) {
        const h = g * R + r;
        const q = rope(x.q.subarray((b * H + h) * E, (b * H + h + 1) * E), c, s);
        const z = new Float64Array(P + 1);
        for (let k = 0; k <= P; k++) {
          let dot = 0;
          for (let j = 0; j < E; j++) dot += q[j] * keys[base + k * E + j];
          z[k] = dot * scale + x.bias[b * (P + 1) + k];
        }
        const m = Math.max(...z);
        const e = z.map((v) => Math.exp(v - m));
        const sum = e.reduce((a, v) => a + v, 0);
        for (let k = 0; k <= P; k++) for (let j = 0; j < E; j++) out[(b * H + h) * E + j] += (e[k] / sum) * vals[base + k * E + j];
      }
    }
  }
  return { out, keys, values: vals };
}

describe('fused decode attention (native) vs a float64 loop', { skip }, () => {
  before(async () => {
    if (addon === null) assert.fail(`POSTTRAIN_NATIVE=1 but the native addon is absent: ${status.reason}`);
    await initBackend({ backend: 'wasm', logger: { info: () => undefined } });
    assert.equal(nativeKernelsActive(), true);
  });

  const cases: Case[] = [
    { B: 1, H: 1, G: 1, E: 2, C: 1, P: 0 }, // cache length 1: the step's own key only
    { B: 1, H: 4, G: 4, E: 8, C: 9, P: 5 },
    { B: 3, H: 4, G: 2, E: 6, C: 7, P: 6 }, // GQA, R = 2, last spare column
    { B: 2, H: 8, G: 1, E: 4, C: 40, P: 17 }, // one kv head for eight query heads
    { B: 5, H: 6, G: 3, E: 64, C: 100, P: 63 },
  ];
  for (const d of cases) {
    test(`B ${d.B}, H ${d.H}, G ${d.G}, E ${d.E}, capacity ${d.C}, column ${d.P}: output, written column, untouched columns`, () => {
      const x = inputs(d, 7 * d.P + d.E);
      const scale = 1 / Math.sqrt(d.E);
      const ref = reference(d, x, scale);
      const t = {
        q: tf.tensor2d(x.q, [d.B, d.H * d.E]), k: tf.tensor2d(x.k, [d.B, d.G * d.E]), v: tf.tensor2d(x.v, [d.B, d.G * d.E]),
        cos: tf.tensor3d(x.cos, [d.B, 1, d.E]), sin: tf.tensor3d(x.sin, [d.B, 1, d.E]),
        keys: tf.tensor4d(x.keys, [d.B, d.G, d.C, d.E]), values: tf.tensor4d(x.values, [d.B, d.G, d.C, d.E]),
        bias: tf.tensor(x.bias, [d.B, 1, 1, 1, d.P + 1]),
      };
      const out = decodeAttentionNative(t, { column: d.P, heads: d.H, scale });
      try {
        assert.deepEqual(out.shape, [d.B, d.H * d.E]);
        // float32 dot products of E terms and sums of P+1 weights: 2e-5 relative to max(1, |ref|).
        assertClose(out.dataSync(), ref.out, 'out', 2e-5);
        // The written column is rope(k) in the tfjs ops' float32 order, and v: exact; the rest unchanged.
        assert.deepEqual(t.keys.dataSync(), ref.keys, 'keys: column P = rope(k), others as they were');
        assert.deepEqual(t.values.dataSync(), ref.values, 'values: column P = v, others as they were');
      } finally {
        tf.dispose([out, ...Object.values(t)]);
      }
    });
  }

  test('operands are validated, naming the operand, its value and the expectation', () => {
    const d = { B: 2, H: 4, G: 2, E: 4, C: 3, P: 1 };
    const x = inputs(d, 3);
    const t = {
      q: tf.tensor2d(x.q, [d.B, d.H * d.E]), k: tf.tensor2d(x.k, [d.B, d.G * d.E]), v: tf.tensor2d(x.v, [d.B, d.G * d.E]),
      cos: tf.tensor3d(x.cos, [d.B, 1, d.E]), sin: tf.tensor3d(x.sin, [d.B, 1, d.E]),
      keys: tf.tensor4d(x.keys, [d.B, d.G, d.C, d.E]), values: tf.tensor4d(x.values, [d.B, d.G, d.C, d.E]),
      bias: tf.tensor(x.bias, [d.B, d.P + 1]),
    };
    try {
      assert.throws(() => decodeAttentionNative(t, { column: 3, heads: 4, scale: 1 }), /column 3 is outside the cache's capacity \[0, 3\)/);
      assert.throws(() => decodeAttentionNative(t, { column: 1, heads: 3, scale: 1 }), /heads 3 is not a positive multiple of the cache's 2 kv heads/);
      assert.throws(() => decodeAttentionNative({ ...t, bias: tf.zeros([2, 3]) }, { column: 1, heads: 4, scale: 1 }), /bias has shape \[2,3\] \(float32\), expected 4 float32 values/);
      assert.throws(() => decodeAttentionNative({ ...t, values: tf.zeros([2, 2, 4, 4]) as tf.Tensor4D }, { column: 1, heads: 4, scale: 1 }), /values has shape \[2,2,4,4\] \(float32\), expected 48 float32 values/);
      assert.throws(() => decodeAttentionNative({ ...t, q: tf.zeros([2, 16], 'int32') as tf.Tensor2D }, { column: 1, heads: 4, scale: 1 }), /q has shape \[2,16\] \(int32\), expected 32 float32 values/);
    } finally {
      tf.dispose(Object.values(t));
    }
  });

  test('the addon refuses ranges outside the heap and outputs overlapping inputs', () => {
    const heap = new ArrayBuffer(4 * 64); // 64 floats
    // B 1, H 1, G 1, E 2, capacity 2, column 1: q k v cos sin at 0..9, keys 10..13, values 14..17, bias 18..19, out 20..21.
    const call = (o: Partial<Record<'q' | 'keys' | 'out', number>>, column = 1) =>
      addon!.decodeAttention(heap, o.q ?? 0, 2, 4, 6, 8, o.keys ?? 10, 14, 18, o.out ?? 20, 1, 1, 1, 2, 2, column, 1);
    call({});
    assert.throws(() => call({ out: 63 }), /out range \[63, \+2\) lies outside the wasm heap of 64 floats/);
    assert.throws(() => call({ q: -1 }), /q range \[-1, \+2\)/);
    assert.throws(() => call({ keys: 62 }), /keys range \[62, \+4\) lies outside/);
    assert.throws(() => call({ out: 1 }), /out overlaps q/);
    assert.throws(() => call({ keys: 12 }), /keys overlaps values/);
    assert.throws(() => call({}, 2), /0 <= column < capacity; got .* capacity 2, column 2/);
  });
});
