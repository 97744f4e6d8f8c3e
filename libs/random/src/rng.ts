/**
 * A seeded pseudo-random generator with plain-JSON state: xoshiro128** (Blackman
 * and Vigna, "Scrambled linear pseudorandom number generators", 2018/2021,
 * https://prng.di.unimi.it/xoshiro128starstar.c), seeded through splitmix64
 * (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014),
 * as the xoshiro authors recommend.
 *
 * Why xoshiro128**: its whole state is four 32-bit words, so every step is plain
 * 32-bit integer arithmetic in JS (`Math.imul`, `>>>`), and the state
 * round-trips through JSON exactly. splitmix64 needs 64-bit products, so it runs
 * on BigInt, but only when a generator is created or forked, never per draw.
 */

/** The serialised state of an {@link Rng}: plain JSON, saved in checkpoints. */
export interface RngState {
  /** Always `'xoshiro128**'`; kept so a future algorithm change is detected on load. */
  readonly algorithm: 'xoshiro128**';
  /** The four 32-bit state words, unsigned, not all zero. */
  readonly s: readonly [number, number, number, number];
}

const ALGORITHM = 'xoshiro128**';
const MASK64 = (1n << 64n) - 1n;
const TWO_POW_32 = 4294967296;

/** One splitmix64 step: returns the new counter and the 64-bit output. */
function splitmix64(state: bigint): { state: bigint; output: bigint } {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return { state: next, output: z ^ (z >> 31n) };
}

/** Four xoshiro128** words from a 64-bit seed, via two splitmix64 outputs. */
function wordsFromSeed64(seed: bigint): [number, number, number, number] {
  let st = seed & MASK64;
  const words: number[] = [];
  for (let i = 0; i < 2; i++) {
    const r = splitmix64(st);
    st = r.state;
    words.push(Number(r.output >> 32n), Number(r.output & 0xffffffffn));
  }
  // splitmix64 is a bijection of its counter, and the two outputs come from
  // different counters, so both cannot be zero; the all-zero state (the one
  // state xoshiro cannot leave) is therefore unreachable from here.
  return [words[0], words[1], words[2], words[3]];
}

/** 64-bit FNV-1a over the UTF-8 bytes of a label (only used to name fork streams). */
function fnv1a64(label: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(label, 'utf8')) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & MASK64;
  }
  return h;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < TWO_POW_32;
}

/**
 * Checks that `state` is a valid {@link RngState} and returns it typed; throws an
 * error naming the field, the value found and what was expected.
 */
export function validateRngState(state: unknown, where = 'rng state'): RngState {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw new Error(`${where}: expected an object {algorithm, s}, got ${formatValue(state)}`);
  }
  const record = state as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== 'algorithm' && key !== 's') {
      throw new Error(`${where}: unknown field "${key}"; expected only "algorithm" and "s"`);
    }
  }
  if (record.algorithm !== ALGORITHM) {
    throw new Error(`${where}.algorithm: expected "${ALGORITHM}", got ${formatValue(record.algorithm)}`);
  }
  const s = record.s;
  if (!Array.isArray(s) || s.length !== 4) {
    throw new Error(`${where}.s: expected an array of 4 unsigned 32-bit integers, got ${formatValue(s)}`);
  }
  s.forEach((w, i) => {
    if (!isUint32(w)) {
      throw new Error(`${where}.s[${i}]: expected an integer in [0, 4294967295], got ${formatValue(w)}`);
    }
  });
  if (s.every((w) => w === 0)) {
    throw new Error(`${where}.s: the all-zero state [0,0,0,0] is invalid for xoshiro128** (it never leaves it)`);
  }
  return { algorithm: ALGORITHM, s: [s[0], s[1], s[2], s[3]] };
}

function seedToBigInt(seed: number | bigint | string): bigint {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed > MASK64) throw new Error(`seed: expected a bigint in [0, 2^64), got ${seed}n`);
    return seed;
  }
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new Error(`seed: expected a non-negative safe integer, got ${formatValue(seed)}`);
    }
    return BigInt(seed);
  }
  if (typeof seed === 'string') {
    if (seed.length === 0) throw new Error('seed: expected a non-empty string');
    return fnv1a64(seed);
  }
  throw new Error(`seed: expected a number, bigint or string, got ${formatValue(seed)}`);
}

/**
 * Seeded generator. Create with `new Rng(seed)` or `Rng.fromState(saved)`.
 * Same seed, same calls -> same values on every platform.
 */
export class Rng {
  // The four state words as unsigned 32-bit numbers.
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /**
   * @param seed a non-negative safe integer, a bigint below 2^64, or a
   *   non-empty string (hashed with FNV-1a 64); expanded to 128 bits of state
   *   with splitmix64.
   */
  constructor(seed: number | bigint | string) {
    [this.s0, this.s1, this.s2, this.s3] = wordsFromSeed64(seedToBigInt(seed));
  }

  /** Restores a generator that continues exactly where `getState()` was taken. */
  static fromState(state: unknown): Rng {
    const valid = validateRngState(state);
    const rng = new Rng(0);
    [rng.s0, rng.s1, rng.s2, rng.s3] = valid.s;
    return rng;
  }

  /** The current state as plain JSON (a copy; later draws do not change it). */
  getState(): RngState {
    return { algorithm: ALGORITHM, s: [this.s0, this.s1, this.s2, this.s3] };
  }

  /** An independent copy with the same state. */
  clone(): Rng {
    return Rng.fromState(this.getState());
  }

  /**
   * Derives an independent stream named `label`, without advancing this one.
   * The child is a function of (this state, label): the same parent state and
   * label always give the same child, different labels give unrelated streams
   * (the words are mixed through splitmix64 before seeding the child).
   */
  fork(label: string): Rng {
    if (typeof label !== 'string' || label.length === 0) {
      throw new Error(`fork label: expected a non-empty string, got ${formatValue(label)}`);
    }
    let z = fnv1a64(label);
    for (const w of [this.s0, this.s1, this.s2, this.s3]) {
      z = splitmix64(z ^ BigInt(w)).output;
    }
    const child = new Rng(0);
    [child.s0, child.s1, child.s2, child.s3] = wordsFromSeed64(z);
    return child;
  }

  /** Next 32 uniformly distributed bits as an unsigned integer in [0, 2^32). */
  nextUint32(): number {
    // result = rotl(s1 * 5, 7) * 9, all mod 2^32 (xoshiro128starstar.c, next()).
    const x = Math.imul(this.s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = ((this.s3 << 11) | (this.s3 >>> 21)) >>> 0;
    return result;
  }

  /**
   * Uniform double in [0, 1) with 53 random bits: the top 27 bits of one draw
   * and the top 26 of the next, (a * 2^26 + b) / 2^53. Consumes two draws.
   */
  nextFloat(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /**
   * Unbiased integer in [0, n) for an integer 1 <= n <= 2^32. Draws below
   * 2^32 mod n are rejected (arc4random_uniform's method), so the accepted
   * range has exactly floor(2^32 / n) * n values and `% n` is uniform.
   */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new Error(`nextInt(n): expected an integer in [1, 2^32], got ${formatValue(n)}`);
    }
    const threshold = TWO_POW_32 % n;
    for (;;) {
      const r = this.nextUint32();
      if (r >= threshold) return r % n;
    }
  }

  /**
   * Standard normal N(0, 1) by Box-Muller. One of the pair is returned and the
   * other discarded, so the generator's state stays just its four words.
   */
  normal(mean = 0, std = 1): number {
    if (!Number.isFinite(mean)) throw new Error(`normal(mean): expected a finite number, got ${formatValue(mean)}`);
    if (!Number.isFinite(std) || std < 0) {
      throw new Error(`normal(std): expected a finite number >= 0, got ${formatValue(std)}`);
    }
    const u1 = 1 - this.nextFloat(); // (0, 1], so log(u1) is finite
    const u2 = this.nextFloat();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Shuffles `array` in place (Fisher-Yates, Durstenfeld's form) and returns it. */
  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /**
   * Index i drawn with probability weights[i] / sum(weights) (inverse CDF on
   * one uniform). Weights must be finite, >= 0, with a positive sum.
   */
  categorical(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i];
      if (!Number.isFinite(w) || w < 0) {
        throw new Error(`categorical(weights): weights[${i}] = ${formatValue(w)}; expected a finite number >= 0`);
      }
      total += w;
    }
    if (!(total > 0)) {
      throw new Error(`categorical(weights): expected a positive sum over ${weights.length} weights, got ${total}`);
    }
    const u = this.nextFloat() * total;
    let acc = 0;
    let last = -1;
    for (let i = 0; i < weights.length; i++) {
      if (weights[i] === 0) continue;
      acc += weights[i];
      last = i;
      if (u < acc) return i;
    }
    // Rounding can leave u a hair above the accumulated sum: the last
    // positive-weight index is the right answer then.
    return last;
  }
}
