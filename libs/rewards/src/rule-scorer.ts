import type { ScoreItem } from '@posttrain/proto';
import { RewardValidationError, showValue } from './reward-errors';

/**
 * A compiled rule: the value of one component for one item. `itemPath` (such
 * as `items[3]`) names the item in errors about what the item lacks.
 */
export type RuleScorer = (item: ScoreItem, itemPath: string) => number;

/** Where a rule sits in the request, for error messages. */
export interface RuleContext {
  /** Path of the rule's parameters, e.g. `components[1].regex` (or `rewards[1].params` in a spec). */
  readonly paramsPath: string;
  /** Describes the component in item errors, e.g. `components[1] ("correct", numeric_match)`. */
  readonly describe: string;
}

/** Throws unless `value` is a finite number >= 0. */
export function requireNonNegative(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RewardValidationError(field, `got ${showValue(value)}, expected a finite number >= 0`);
  }
  return value;
}

/** Throws unless `value` is a finite number. */
export function requireFinite(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new RewardValidationError(field, `got ${showValue(value)}, expected a finite number`);
  }
  return value;
}

/** Throws unless `value` is a boolean (undefined reads as false, the proto default). */
export function requireBoolean(value: unknown, field: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new RewardValidationError(field, `got ${showValue(value)}, expected true or false`);
  return value;
}

/** Throws unless `value` is a string (undefined reads as "", the proto default). */
export function requireString(value: unknown, field: string): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new RewardValidationError(field, `got ${showValue(value)}, expected a string`);
  return value;
}

/** The ground truth of an item for an answer rule; throws when the item has none. */
export function requireGroundTruth(item: ScoreItem, itemPath: string, ctx: RuleContext): string {
  if (item.groundTruth === undefined || item.groundTruth === null) {
    throw new RewardValidationError(
      `${itemPath}.ground_truth`,
      `missing (item id ${JSON.stringify(item.id)}), but ${ctx.describe} compares answers against it`,
    );
  }
  return item.groundTruth;
}
