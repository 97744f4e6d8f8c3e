// What every part of the reliability suite records: table rows and statuses by code.
import type { ServiceError } from '@grpc/grpc-js';
import { status } from '@posttrain/rpc';

export interface Row {
  scenario: string;
  expected: string;
  observed: string;
  pass: boolean;
}
export const rows: Row[] = [];
export const byCode = new Map<string, number>();
export const codeName = (c: number) => status[c] ?? `CODE_${c}`;

/** Counts one settled call's status. */
export function count(observed: string, n = 1): void {
  byCode.set(observed, (byCode.get(observed) ?? 0) + n);
}

/** Status of a settled call: OK or the error's code name. */
export async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    const e = err as Partial<ServiceError>;
    return typeof e.code === 'number' ? codeName(e.code) : `ERROR ${(err as Error).message?.slice(0, 80)}`;
  }
}

/** The q-quantile (0..1) of the values, nearest rank; NaN for none. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
