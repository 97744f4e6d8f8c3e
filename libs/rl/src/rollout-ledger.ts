/**
 * The rollout ledger, <runDir>/rollout-ledger.jsonl: one line per step with
 * the prompt lines (of the data file) whose rollouts the step consumed, the
 * lines whose rollouts it dropped as too stale, and the weights versions the
 * rollouts were sampled with. On resume it is cut back to the checkpoint's
 * step, like metrics.jsonl, so that over a run (with its resumes) every
 * prompt drawn appears once, as consumed or as dropped.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { truncateMetricsJsonl } from '@posttrain/telemetry';
import type { PromptInfo } from './rollout-queue';
import type { Rollout } from './rollout-types';

export interface LedgerEntry {
  step: number;
  /** The trainer's weights version when the step consumed its rollouts. */
  weights_version: number;
  /** Prompt lines whose rollouts were trained on. */
  consumed: number[];
  /** Prompt lines whose rollouts were dropped (older than max_staleness). */
  dropped: number[];
  /** Rollouts per weights version they were sampled with. */
  sampled_with: Record<string, number>;
}

export class RolloutLedger {
  readonly path: string;

  constructor(runDir: string, resumedStep: number | null) {
    this.path = join(runDir, 'rollout-ledger.jsonl');
    if (resumedStep !== null) truncateMetricsJsonl(this.path, resumedStep);
  }

  /** Appends the step's entry: each prompt consumed when any of its rollouts was kept, else dropped. */
  record(step: number, weightsVersion: number, prompts: ReadonlyMap<string, PromptInfo>, all: readonly Rollout[], kept: readonly Rollout[]): LedgerEntry {
    const keptIds = new Set(kept.map((r) => r.promptId));
    const consumed: number[] = [];
    const dropped: number[] = [];
    for (const [id, info] of prompts) (keptIds.has(id) ? consumed : dropped).push(info.line);
    const sampledWith: Record<string, number> = {};
    for (const rollout of all) sampledWith[rollout.weightsVersion] = (sampledWith[rollout.weightsVersion] ?? 0) + 1;
    const entry: LedgerEntry = { step, weights_version: weightsVersion, consumed, dropped, sampled_with: sampledWith };
    appendFileSync(this.path, JSON.stringify(entry) + '\n');
    return entry;
  }
}
