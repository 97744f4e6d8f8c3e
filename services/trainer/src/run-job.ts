import type { RlRunConfig } from '@posttrain/rl';
import { dpoReferenceLogProbs, referenceServiceClient, runRl } from '@posttrain/rl';
import type { RunCallbacks, RunConfig } from '@posttrain/training';
import { runStage } from '@posttrain/training';
import type { Logger } from '@posttrain/telemetry';

/**
 * A validated run, as plain data that crosses the process boundary to the
 * run worker (structured clone): an offline stage's RunConfig, or an online
 * stage's RlRunConfig.
 */
export type RunJob = { kind: 'offline'; config: RunConfig; dpoReferenceAddress: string | null } | { kind: 'rl'; config: RlRunConfig; serviceRetryMs?: number };

export interface RunJobResult {
  status: 'completed' | 'cancelled';
  runDir: string;
  lastMetrics: Record<string, number>;
  lastEval?: Record<string, number> | null;
}

/** Runs a job in this process (the run worker calls this). */
export async function executeRunJob(job: RunJob, options: { signal: AbortSignal; callbacks: RunCallbacks; logger: Logger }): Promise<RunJobResult> {
  if (job.kind === 'rl') return runRl(job.config, { ...options, serviceRetryMs: job.serviceRetryMs });
  // DPO computes its reference log-probs once per dataset, in long calls.
  const reference = job.dpoReferenceAddress ? referenceServiceClient(job.dpoReferenceAddress, { deadlineMs: 300_000 }) : null;
  try {
    return await runStage(job.config, { ...options, progress: false, referenceLogProbs: reference ? dpoReferenceLogProbs(reference) : undefined });
  } finally {
    reference?.close();
  }
}
