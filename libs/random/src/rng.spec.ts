import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, validateRngState } from './rng';
import type { RngState } from './rng';

// An independent xoshiro128** written on BigInt, straight from
// xoshiro128starstar.c, to check the Math.imul / >>> version against.
function referenceXoshiro(seedWords: readonly number[], count: number): number[] {
  const M = 0xffffffffn;
  const rotl = (x: bigint, k: bigint): bigint => ((x << k) | (x >> (32n - k))) & M;
  const s = seedWords.map((w) => BigInt(w));
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(Number((rotl((s[1] * 5n) & M, 7n) * 9n) & M));
    const t = (s[1] << 9n) & M;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11n);
  }
  return out;
}

const stateOf = (s: [number, number, number, number]): RngState => ({ algorithm: 'xoshiro128**', s });

describe('Rng known answers', () => {
  test('xoshiro128** from state [1,2,3,4] gives the hand-computed first outputs', () => {
    // By hand: out1 = rotl(2*5, 7) * 9 = 1280 * 9 = 11520.
    // Update: t = 2<<9 = 1024; s2 = 3^1 = 2; s3 = 4^2 = 6; s1 = 2^2 = 0; s0 = 1^6 = 7;
    //   s2 = 2^1024 = 1026; s3 = rotl(6, 11) = 12288 -> state [7, 0, 1026, 12288].
    // out2 = rotl(0*5, 7) * 9 = 0.
    // Update: t = 0; s2 = 1026^7 = 1029; s3 = 12288^0 = 12288; s1 = 0^1029 = 1029;
    //   s0 = 7^12288 = 12295; s2 = 1029; s3 = rotl(12288, 11) = 25165824.
    // out3 = rotl(1029*5, 7) * 9 = 5145 * 128 * 9 = 5927040.
    const rng = Rng.fromState(stateOf([1, 2, 3, 4]));
    assert.equal(rng.nextUint32(), 11520);
    assert.equal(rng.nextUint32(), 0);
    assert.deepEqual(rng.getState().s, [12295, 1029, 1029, 25165824]);
    assert.equal(rng.nextUint32(), 5927040);
  });

  test('matches a BigInt reference implementation for 1000 outputs from a large state', () => {
    const words: [number, number, number, number] = [0xdeadbeef, 0x01234567, 0xffffffff, 0x80000000];
    const rng = Rng.fromState(stateOf(words));
    const got = Array.from({ length: 1000 }, () => rng.nextUint32());
    assert.deepEqual(got, referenceXoshiro(words, 1000));
  });

  test('seeding uses splitmix64: seed 0 gives its published first two outputs', () => {
    // splitmix64 from 0: 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4 (the reference
    // values of splitmix64.c, also used by Java's SplittableRandom tests).
    const rng = new Rng(0);
    assert.deepEqual(rng.getState().s, [0xe220a839, 0x7b1dcdaf, 0x6e789e6a, 0xa1b965f4]);
  });

  test('nextFloat combines 27 + 26 bits of two draws', () => {
    const words: [number, number, number, number] = [5, 6, 7, 8];
    const [a, b] = referenceXoshiro(words, 2);
    const expected = ((a >>> 5) * 2 ** 26 + (b >>> 6)) / 2 ** 53;
    assert.equal(Rng.fromState(stateOf(words)).nextFloat(), expected);
  });
});

describe('Rng determinism and state', () => {
  test('same seed gives the same sequence, different seeds differ', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 50 }, () => a.nextUint32());
    const sb = Array.from({ length: 50 }, () => b.nextUint32());
    const sc = Array.from({ length: 50 }, () => c.nextUint32());
    assert.deepEqual(sa, sb);
    assert.notDeepEqual(sa, sc);
    assert.deepEqual(new Rng('data-shuffle').getState(), new Rng('data-shuffle').getState());
    assert.notDeepEqual(new Rng('a').getState(), new Rng('b').getState());
  });

  test('restoring from JSON state continues the identical sequence', () => {
    const rng = new Rng(7);
    for (let i = 0; i < 13; i++) rng.nextFloat();
    const saved = JSON.parse(JSON.stringify(rng.getState())) as unknown;
    const expected = [rng.nextUint32(), rng.nextFloat(), rng.normal(), rng.nextInt(10)];
    const restored = Rng.fromState(saved);
    assert.deepEqual([restored.nextUint32(), restored.nextFloat(), restored.normal(), restored.nextInt(10)], expected);
  });

  test('getState is a snapshot and clone is independent', () => {
    const rng = new Rng(1);
    const snap = rng.getState();
    const clone = rng.clone();
    rng.nextUint32();
    assert.notDeepEqual(rng.getState(), snap);
    assert.deepEqual(clone.getState(), snap);
  });

  test('fork is deterministic, label-dependent, and does not advance the parent', () => {
    const rng = new Rng(99);
    const before = rng.getState();
    const f1 = rng.fork('sampler');
    const f2 = rng.fork('sampler');
    const g = rng.fork('shuffle');
    assert.deepEqual(rng.getState(), before);
    const x1 = Array.from({ length: 20 }, () => f1.nextUint32());
    const x2 = Array.from({ length: 20 }, () => f2.nextUint32());
    const y = Array.from({ length: 20 }, () => g.nextUint32());
    const p = Array.from({ length: 20 }, () => rng.nextUint32());
    assert.deepEqual(x1, x2);
    assert.notDeepEqual(x1, y);
    assert.notDeepEqual(x1, p);
    assert.throws(() => rng.fork(''), /fork label/);
  });

  test('fork streams are uncorrelated with the parent (sample correlation near 0)', () => {
    const rng = new Rng(5);
    const child = rng.fork('child');
    const n = 20000;
    let sxy = 0;
    let sx = 0;
    let sy = 0;
    let sxx = 0;
    let syy = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.nextFloat();
      const y = child.nextFloat();
      sx += x;
      sy += y;
      sxy += x * y;
      sxx += x * x;
      syy += y * y;
    }
    const cov = sxy / n - (sx / n) * (sy / n);
    const corr = cov / Math.sqrt((sxx / n - (sx / n) ** 2) * (syy / n - (sy / n) ** 2));
    // Standard error of a correlation at n = 20000 is 1/sqrt(n) ~ 0.007; bound at ~5 sigma.
    assert.ok(Math.abs(corr) < 0.035, `corr ${corr}`);
  });
});

describe('Rng state validation', () => {
  test('rejects malformed states with the field, the value and what was expected', () => {
    assert.throws(() => Rng.fromState(null), /rng state: expected an object/);
    assert.throws(() => Rng.fromState({ algorithm: 'pcg32', s: [1, 2, 3, 4] }), /rng state\.algorithm: expected "xoshiro128\*\*", got "pcg32"/);
    assert.throws(() => Rng.fromState({ algorithm: 'xoshiro128**', s: [1, 2, 3] }), /rng state\.s: expected an array of 4/);
    assert.throws(() => Rng.fromState({ algorithm: 'xoshiro128**', s: [1, 2, -3, 4] }), /rng state\.s\[2\]: expected an integer in \[0, 4294967295\], got -3/);
    assert.throws(() => Rng.fromState({ algorithm: 'xoshiro128**', s: [1, 2, 3, 2 ** 32] }), /s\[3\]/);
    assert.throws(() => Rng.fromState({ algorithm: 'xoshiro128**', s: [1, 2.5, 3, 4] }), /s\[1\]/);
    assert.throws(() => Rng.fromState({ algorithm: 'xoshiro128**', s: [0, 0, 0, 0] }), /all-zero/);
    assert.throws(() => Rng.fromState({ algorithm: 'xoshiro128**', s: [1, 2, 3, 4], extra: 1 }), /unknown field "extra"/);
    assert.throws(() => validateRngState('x', 'checkpoint.rng'), /checkpoint\.rng: expected an object/);
  });

  test('rejects bad seeds and arguments', () => {
    assert.throws(() => new Rng(-1), /seed: expected a non-negative safe integer, got -1/);
    assert.throws(() => new Rng(1.5), /seed/);
    assert.throws(() => new Rng(''), /seed/);
    assert.throws(() => new Rng(2n ** 64n), /seed/);
    const rng = new Rng(0);
    assert.throws(() => rng.nextInt(0), /nextInt\(n\): expected an integer in \[1, 2\^32\], got 0/);
    assert.throws(() => rng.nextInt(2.5), /nextInt/);
    assert.throws(() => rng.normal(0, -1), /std/);
    assert.throws(() => rng.categorical([1, -1]), /weights\[1\]/);
    assert.throws(() => rng.categorical([0, 0]), /positive sum/);
  });
});

describe('Rng distributions', () => {
  test('nextUint32 low byte and nextFloat deciles are roughly uniform (chi-square)', () => {
    const rng = new Rng(2024);
    const bins = new Array<number>(256).fill(0);
    const n = 256 * 200;
    for (let i = 0; i < n; i++) bins[rng.nextUint32() & 0xff]++;
    const chi = bins.reduce((acc, o) => acc + (o - 200) ** 2 / 200, 0);
    // 255 degrees of freedom: mean 255, sd ~22.6; 400 is ~6.4 sd out. A biased
    // generator (e.g. one stuck bit) gives chi-square in the tens of thousands.
    assert.ok(chi < 400, `chi-square ${chi}`);

    const deciles = new Array<number>(10).fill(0);
    for (let i = 0; i < 10000; i++) {
      const u = rng.nextFloat();
      assert.ok(u >= 0 && u < 1);
      deciles[Math.floor(u * 10)]++;
    }
    const chi10 = deciles.reduce((acc, o) => acc + (o - 1000) ** 2 / 1000, 0);
    // 9 dof: mean 9; 40 is far in the tail (p < 1e-5).
    assert.ok(chi10 < 40, `chi-square ${chi10}`);
  });

  test('nextInt is unbiased where modulo reduction would not be', () => {
    // n = 3 * 2^30: plain `x % n` maps [0, 2^30) twice, so P(result < 2^30) would be
    // 1/2 instead of 1/3. With 30000 draws the sd of the fraction is ~0.0027.
    const rng = new Rng(11);
    const n = 3 * 2 ** 30;
    let low = 0;
    const draws = 30000;
    for (let i = 0; i < draws; i++) {
      const x = rng.nextInt(n);
      assert.ok(x >= 0 && x < n && Number.isInteger(x));
      if (x < 2 ** 30) low++;
    }
    assert.ok(Math.abs(low / draws - 1 / 3) < 0.015, `fraction ${low / draws}`);
    assert.equal(rng.nextInt(1), 0);
    const small = new Array<number>(7).fill(0);
    for (let i = 0; i < 7000; i++) small[rng.nextInt(7)]++;
    const chi = small.reduce((acc, o) => acc + (o - 1000) ** 2 / 1000, 0);
    assert.ok(chi < 35, `chi-square ${chi}`); // 6 dof
  });

  test('normal has mean ~0 and variance ~1, and respects mean/std', () => {
    const rng = new Rng(3);
    const n = 20000;
    let s = 0;
    let ss = 0;
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      s += z;
      ss += z * z;
    }
    const mean = s / n;
    const variance = ss / n - mean * mean;
    // se(mean) = 0.007, se(var) ~ sqrt(2/n) = 0.01; bounds at ~5 se.
    assert.ok(Math.abs(mean) < 0.035, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.05, `variance ${variance}`);
    const r2 = new Rng(3);
    const r3 = new Rng(3);
    assert.equal(r2.normal(10, 2), 10 + 2 * r3.normal());
  });

  test('shuffle is an in-place permutation and uniform over the 6 orders of 3 items', () => {
    const rng = new Rng(8);
    const arr = Array.from({ length: 50 }, (_, i) => i);
    const same = rng.shuffle(arr);
    assert.equal(same, arr);
    assert.deepEqual([...arr].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
    const counts = new Map<string, number>();
    const trials = 6000;
    for (let i = 0; i < trials; i++) {
      const key = rng.shuffle(['a', 'b', 'c']).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    assert.equal(counts.size, 6);
    const chi = [...counts.values()].reduce((acc, o) => acc + (o - 1000) ** 2 / 1000, 0);
    assert.ok(chi < 35, `chi-square ${chi}`); // 5 dof
    assert.deepEqual(new Rng(1).shuffle([]), []);
  });

  test('categorical follows the weights', () => {
    const rng = new Rng(4);
    const counts = [0, 0, 0, 0];
    const n = 10000;
    for (let i = 0; i < n; i++) counts[rng.categorical([1, 0, 3, 6])]++;
    assert.equal(counts[1], 0);
    // Expected 1000, 0, 3000, 6000; chi-square over the 3 live cells, 2 dof.
    const chi = (counts[0] - 1000) ** 2 / 1000 + (counts[2] - 3000) ** 2 / 3000 + (counts[3] - 6000) ** 2 / 6000;
    assert.ok(chi < 25, `chi-square ${chi}`);
    assert.equal(rng.categorical(new Float32Array([0, 0, 2])), 2);
  });
});
