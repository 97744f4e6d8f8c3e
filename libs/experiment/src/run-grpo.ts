/**
 * GRPO from a given start model over the real serving tier: a policy sampler
 * and a reference model serving the start model, a reward service scoring the
 * task's verifiable reward (numeric match after "Answer:" + format), and
 * libs/rl's runRl driving them over gRPC. The services are started by an
 * injected launcher (the CLI's local services; this library cannot import the
 * CLI) and stopped when the run ends.
 */
import { AdvantageEstimator, RunSpec } from '@posttrain/proto';
import { resolveRlRunConfig, runRl } from '@posttrain/rl';
import type { Logger } from '@posttrain/telemetry';
import { taskRewardComponents } from '@posttrain/task';

/** Starts services (each given its own args) and returns their addresses in order, with a stop function. */
export type ServiceLauncher = (specs: { name: 'policy-sampler' | 'reference' | 'reward'; args: string[] }[]) => Promise<{ addresses: string[]; stop: () => Promise<void> }>;

export interface GrpoSettings {
  steps: number;
  promptsPerStep: number;
  groupSize: number;
  learningRate: number;
  /** k3 KL in the loss against the start model (the reference). */
  klCoefficient: number;
  temperature: number;
  maxNewTokens: number;
}

/** One point of a GRPO learning curve: after `samples` completions, the step's mean task reward and KL to the start model. */
export interface RlPoint {
  step: number;
  samples: number;
  /** Mean task reward of the step's rollouts (correct + 0.1 format). */
  score: number;
  /** Mean KL(policy || start model) per sequence. */
  kl: number;
}

export interface GrpoRun {
  runDir: string;
  modelDir: string;
  points: RlPoint[];
}

/** Runs GRPO from `modelDir` on `promptsFile` (prompt-only records with answers) into <outputDir>/<runId>. */
export async function runGrpo(
  o: { runId: string; outputDir: string; modelDir: string; promptsFile: string; seed: number; settings: GrpoSettings; launch: ServiceLauncher; logger?: Logger; signal?: AbortSignal; onStep?: (p: RlPoint, totalSteps: number, metrics: Record<string, number>) => void },
): Promise<GrpoRun> {
  const s = o.settings;
  const services = await o.launch([
    { name: 'policy-sampler', args: ['--model', o.modelDir, '--max-new-tokens', String(s.maxNewTokens)] },
    { name: 'reference', args: ['--model', o.modelDir] },
    { name: 'reward', args: [] },
  ]);
  try {
    const [sampler, reference, reward] = services.addresses;
    const spec = RunSpec.fromPartial({
      runId: o.runId,
      outputDir: o.outputDir,
      baseModelDir: o.modelDir,
      dataset: { paths: [o.promptsFile] },
      seed: o.seed,
      maxSteps: s.steps,
      optimizer: { learningRate: s.learningRate, maxGradNorm: 1 },
      stage: {
        $case: 'grpo',
        value: {
          services: { samplerAddresses: [sampler], referenceAddress: reference, rewardAddress: reward },
          rewardComponents: taskRewardComponents(),
          promptsPerStep: s.promptsPerStep,
          groupSize: s.groupSize,
          advantageEstimator: AdvantageEstimator.GRPO,
          updatesPerBatch: 1,
          minibatchSize: s.promptsPerStep * s.groupSize,
          kl: { coefficient: s.klCoefficient, adaptiveHorizon: 0, estimator: 0, placement: 0 },
          sampling: { temperature: s.temperature, maxNewTokens: s.maxNewTokens, topK: 0, stop: [], stopTokenIds: [], logprobs: true },
        },
      },
    });
    const points: RlPoint[] = [];
    const perStep = s.promptsPerStep * s.groupSize;
    const result = await runRl(resolveRlRunConfig(spec), {
      signal: o.signal,
      logger: o.logger,
      callbacks: {
        onStep: (e) => {
          const p: RlPoint = { step: e.step, samples: e.step * perStep, score: e.metrics['objective/scores'], kl: e.metrics['objective/kl'] };
          points.push(p);
          o.onStep?.(p, e.totalSteps, e.metrics);
        },
      },
    });
    if (result.status !== 'completed' || result.modelDir === null) throw new Error(`GRPO run ${o.runId} was cancelled at step ${result.step}`);
    return { runDir: result.runDir, modelDir: result.modelDir, points };
  } finally {
    await services.stop();
  }
}

/**
 * Completions needed to first reach a mean task reward of `threshold`
 * (Infinity when never reached): claim 2's "samples to a given accuracy".
 */
export function samplesToReach(points: readonly RlPoint[], threshold: number): number {
  for (const p of points) if (p.score >= threshold) return p.samples;
  return Number.POSITIVE_INFINITY;
}
