/**
 * @posttrain/random: seeded, serialisable pseudo-random numbers (xoshiro128**,
 * seeded by splitmix64) for reproducible data shuffling and token sampling.
 *
 * @example
 * ```ts
 * import { Rng } from '@posttrain/random';
 * const rng = new Rng(1234);
 * const order = rng.shuffle([0, 1, 2, 3]);
 * const sampler = rng.fork('sampler'); // independent stream, parent untouched
 * const saved = rng.getState();        // plain JSON, goes into the checkpoint
 * const resumed = Rng.fromState(saved); // continues the identical sequence
 * ```
 */
export { Rng, validateRngState } from './rng';
export type { RngState } from './rng';
