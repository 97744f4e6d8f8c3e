/**
 * Argument checks shared by every loss, run before any tensor work so a wrong
 * call fails with both shapes in the message instead of deep inside a kernel.
 */
import type * as tf from '@tensorflow/tfjs-core';

const fmt = (shape: readonly number[]): string => `[${shape.join(',')}]`;

/** Throws unless `t` has rank `rank`. */
export function assertRank(fn: string, name: string, t: tf.Tensor, rank: number, dims: string): void {
  if (t.rank !== rank) {
    throw new Error(`${fn}: ${name} must have rank ${rank} ${dims}, got shape ${fmt(t.shape)}`);
  }
}

/** Throws unless `t` has exactly `shape`, printing both. */
export function assertShape(fn: string, name: string, t: tf.Tensor, shape: readonly number[], refName: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${fn}: ${name} shape ${fmt(t.shape)} does not match ${refName} shape ${fmt(shape)}`);
  }
}

/** Throws unless `t` is a float tensor (so it can carry gradients and fractional values). */
export function assertFloat(fn: string, name: string, t: tf.Tensor): void {
  if (t.dtype !== 'float32') {
    throw new Error(`${fn}: ${name} must be float32, got ${t.dtype} (shape ${fmt(t.shape)})`);
  }
}

/** Throws unless `value` is a finite number within the given bounds. */
export function assertNumber(
  fn: string,
  name: string,
  value: unknown,
  bounds: { min?: number; max?: number; minExclusive?: number; maxExclusive?: number } = {},
): asserts value is number {
  const parts: string[] = [];
  if (bounds.min !== undefined) parts.push(`>= ${bounds.min}`);
  if (bounds.minExclusive !== undefined) parts.push(`> ${bounds.minExclusive}`);
  if (bounds.max !== undefined) parts.push(`<= ${bounds.max}`);
  if (bounds.maxExclusive !== undefined) parts.push(`< ${bounds.maxExclusive}`);
  const expected = parts.length ? `a finite number ${parts.join(' and ')}` : 'a finite number';
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (bounds.min === undefined || value >= bounds.min) &&
    (bounds.minExclusive === undefined || value > bounds.minExclusive) &&
    (bounds.max === undefined || value <= bounds.max) &&
    (bounds.maxExclusive === undefined || value < bounds.maxExclusive);
  if (!ok) {
    const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
    throw new Error(`${fn}: ${name} must be ${expected}, got ${shown}`);
  }
}

/** Throws unless `value` is one of `allowed`. */
export function assertOneOf<T extends string>(fn: string, name: string, value: unknown, allowed: readonly T[]): asserts value is T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
    throw new Error(`${fn}: ${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${shown}`);
  }
}
