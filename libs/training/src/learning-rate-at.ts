/**
 * Learning-rate schedules with linear warmup, as Hugging Face's
 * get_scheduler builds them (LambdaLR multipliers of the base rate), for the
 * optimizer step with 0-based index `step` out of `totalSteps`:
 *   warmup (step < W):  step / max(1, W)
 *   constant:           1
 *   linear:             max(0, (N - step) / max(1, N - W))
 *   cosine:             max(0, (1 + cos(pi * p)) / 2),  p = (step - W) / max(1, N - W)
 */
import type { LrSchedulerType } from './run-config-types';

export interface LrSchedule {
  type: LrSchedulerType;
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/** Warmup steps from a count or a ratio of the total (HF: ceil(ratio * total)). */
export function warmupStepsFor(warmupSteps: number, warmupRatio: number, totalSteps: number): number {
  return warmupSteps > 0 ? warmupSteps : Math.ceil(warmupRatio * totalSteps);
}

export function learningRateAt(step: number, s: LrSchedule): number {
  if (!Number.isInteger(step) || step < 0) throw new Error(`learningRateAt: step ${JSON.stringify(step)} is not a non-negative integer`);
  const W = s.warmupSteps;
  const N = s.totalSteps;
  if (step < W) return (s.baseLr * step) / Math.max(1, W);
  switch (s.type) {
    case 'constant':
      return s.baseLr;
    case 'linear':
      return s.baseLr * Math.max(0, (N - step) / Math.max(1, N - W));
    case 'cosine': {
      const p = (step - W) / Math.max(1, N - W);
      return s.baseLr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * p)));
    }
  }
}
