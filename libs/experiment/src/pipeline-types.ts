/**
 * What the demo / experiment pipeline reports: its events, each stage's
 * outcome, the evaluation of every model, the RL curves and the result.
 */
import type { Logger } from '@posttrain/telemetry';
import type { GenerationSample } from '@posttrain/training';
import type { Claim } from './assess-claims';
import type { PipelinePlan } from './pipeline-plan';
import type { RlPoint, ServiceLauncher } from './run-rl-stage';

export type PipelineEvent =
  /** `index`: stages started so far, this one included (stages may run at once), of `total`. */
  | { type: 'stage-start'; stage: string; title: string; index: number; total: number }
  | { type: 'step'; stage: string; step: number; totalSteps: number; metrics: Record<string, number>; /** A few generations with their rewards (PPO, GRPO). */ samples?: GenerationSample[] }
  | { type: 'stage-end'; stage: string; title: string; seconds: number; metrics: Record<string, number> };

export interface StageOutcome {
  stage: string;
  title: string;
  kind: 'data' | 'train' | 'eval';
  seconds: number;
  /** The run directory of a training stage. */
  runDir: string | null;
  metrics: Record<string, number>;
}

/** A measured fraction or mean with its standard error over the evaluation items. */
export interface Estimate {
  value: number;
  stderr: number;
}

/** One model's row of the results table. */
export interface ModelEvaluation {
  model: string;
  /** SFT examples behind the model (0 for the base model and GRPO from base). */
  sftExamples: number;
  /** Held-out chat prompts answered right (greedy), and in the answer format. */
  accuracy: Estimate;
  formatRate: Estimate;
  /** Per prompt, whether the greedy answer was right (paired comparisons between models). */
  correct: boolean[];
  /** Expected fraction of temperature-1 replies in the preferred style; the preferred share among replies in either style; the entropy over the two styles (nats). */
  styleRate: Estimate;
  styleShare: Estimate;
  styleEntropy: Estimate;
  /** Held-out style pairs / correctness pairs ranked right by summed log-prob (through the reply's stop token). */
  styleRanking: Estimate;
  correctnessRanking: Estimate;
  /** Plain-text competence on prose prompts (base model only). */
  competence: Estimate | null;
  /** One greedy reply to the first eval prompt, to see the format. */
  example: { prompt: string; reply: string; answer: string };
}

export interface RlCurve {
  stage: string;
  points: RlPoint[];
}

export interface PipelineResult {
  plan: PipelinePlan;
  outDir: string;
  backend: string;
  /** Where the base model came from: the shipped directory, or the --from-scratch build. */
  baseModel: { dir: string; fromScratch: boolean; competence: Estimate };
  stages: StageOutcome[];
  models: ModelEvaluation[];
  /** Held-out style-pair accuracy of the reward model. */
  rewardModelAccuracy: Estimate;
  /** DPO's held-out implicit-reward accuracy (log pi - log pi_sft of chosen above rejected), style pairs. */
  dpoImplicitRewardAccuracy: number;
  /** RL curves by stage (ppo, grpo-sft, grpo-base), for the stages that ran. */
  rl: RlCurve[];
  rlNote: string;
  /** Stages that ran at once (stage-lanes.ts); the stages' seconds overlap when above 1. */
  lanes: number;
  claims: Claim[];
  totalSeconds: number;
}

export interface RunPipelineOptions {
  signal?: AbortSignal;
  onEvent?: (e: PipelineEvent) => void;
  /** Starts the serving tier for PPO and GRPO; without it they are skipped (and the result says so). */
  launchServices?: ServiceLauncher;
  /** The trainer's structured log; default: warnings and errors only, as JSON lines on stderr (progress comes through onEvent). */
  logger?: Logger;
  /** The pretrained base model to start from (the shipped models/tiny-arith-base); ignored with fromScratch. */
  baseModelDir?: string;
  /** Rebuild the base model from `plan.base` first (an hour of CPU at full size). */
  fromScratch?: boolean;
  /** Stages run at once, each on a core (worker threads above 1; stage-lanes.ts); default 1, one after another in this thread. */
  lanes?: number;
}

/** Thrown when the run was cancelled through the signal (between stages or at a step boundary). */
export class PipelineCancelledError extends Error {
  constructor(stage: string) {
    super(`cancelled during stage ${stage}`);
    this.name = 'PipelineCancelledError';
  }
}
