/**
 * Online RL from a given start model over the real serving tier: a policy
 * sampler and a reference model serving the start model, a reward service,
 * and libs/rl's runRl driving them over gRPC. Two algorithms:
 *
 * - GRPO with the task's verifiable reward (numeric match after "Answer:" +
 *   format), from SFT or from base (claim 2);
 * - PPO with a learned reward model and a KL penalty to the start (SFT)
 *   model in the reward, the critic initialised from the reward model: the
 *   classic RLHF pipeline (claim 3's reward-model half).
 *
 * The services are started by an injected launcher (the CLI's local
 * services; this library cannot import the CLI) and stopped when the run ends.
 */
import { RewardComponent } from '@posttrain/proto';
import { resolveRlRunConfig, runRl } from '@posttrain/rl';
import type { Logger } from '@posttrain/telemetry';
import { parseRunConfig } from '@posttrain/training';
import type { GenerationSample } from '@posttrain/training';
import { CORRECT_COMPONENT, taskRewardComponents } from '@posttrain/task';

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
  /**
   * Which prompts the stage trains on: 'all' of the task's RL prompts, or 'failed', those the start
   * model answers wrong decoding greedily (select-failed-prompts.ts; at most steps x promptsPerStep,
   * all prompts when it answers every one right). Applied by the pipeline before the run.
   */
  promptFilter: 'all' | 'failed';
}

export interface PpoSettings {
  steps: number;
  /** Prompts per rollout batch (one completion each). */
  rolloutBatchSize: number;
  ppoEpochs: number;
  minibatchSize: number;
  learningRate: number;
  /** k1 KL to the start model, subtracted from the reward per token (fixed coefficient). */
  klCoefficient: number;
  /** GAE lambda: 1 credits the sequence-end reward to every token (Monte Carlo returns minus the critic's baseline). */
  gaeLambda: number;
  temperature: number;
  maxNewTokens: number;
}

/** One point of an RL learning curve, after `samples` completions. */
export interface RlPoint {
  step: number;
  samples: number;
  /** Mean reward of the step's rollouts (GRPO: correct + 0.1 format; PPO: the reward model's score). */
  score: number;
  /** Fraction of the step's rollouts with the right answer (GRPO's `correct` component; null for PPO, whose reward has none). */
  accuracy: number | null;
  /** Mean KL(policy || start model) per sequence. */
  kl: number;
}

export interface RlStageRun {
  runDir: string;
  modelDir: string;
  points: RlPoint[];
}

/** The reward model's score as the whole reward (it is the only component). */
function rewardModelComponents(): RewardComponent[] {
  return [{ name: 'preference', weight: 1, rule: { $case: 'rewardModel', value: { expectedModelId: '', shift: 0, scale: 0 } } }];
}

export interface RlStageOptions {
  runId: string;
  outputDir: string;
  modelDir: string;
  promptsFile: string;
  seed: number;
  launch: ServiceLauncher;
  logger?: Logger;
  signal?: AbortSignal;
  /** After each step: its point, metrics and a few of its generations with their rewards. */
  onStep?: (p: RlPoint, totalSteps: number, metrics: Record<string, number>, samples: GenerationSample[]) => void;
}

/** Runs GRPO (task reward) or PPO (reward model in `rewardModelDir`) from `modelDir` on `promptsFile` into <outputDir>/<runId>. */
export async function runRlStage(options: RlStageOptions & ({ algorithm: 'grpo'; settings: GrpoSettings } | { algorithm: 'ppo'; settings: PpoSettings; rewardModelDir: string })): Promise<RlStageRun> {
  const s = options.settings;
  const services = await options.launch([
    { name: 'policy-sampler', args: ['--model', options.modelDir, '--max-new-tokens', String(s.maxNewTokens)] },
    { name: 'reference', args: ['--model', options.modelDir] },
    { name: 'reward', args: options.algorithm === 'ppo' ? ['--reward-model', options.rewardModelDir] : [] },
  ]);
  try {
    const [sampler, reference, reward] = services.addresses;
    const serviceAddresses = { sampler_addresses: [sampler], reference_address: reference, reward_address: reward };
    const sampling = { temperature: s.temperature, max_completion_length: s.maxNewTokens };
    let perStep: number;
    let section: Record<string, unknown>;
    if (options.algorithm === 'grpo') {
      const grpo = options.settings;
      perStep = grpo.promptsPerStep * grpo.groupSize;
      section = {
        services: serviceAddresses,
        reward_components: taskRewardComponents().map((component) => RewardComponent.toJSON(component)),
        prompts_per_step: grpo.promptsPerStep,
        num_generations: grpo.groupSize,
        advantage_estimator: 'grpo',
        num_iterations: 1,
        mini_batch_size: perStep,
        beta: grpo.klCoefficient,
        ...sampling,
      };
    } else {
      const ppo = options.settings;
      perStep = ppo.rolloutBatchSize;
      section = {
        services: serviceAddresses,
        reward_components: rewardModelComponents().map((component) => RewardComponent.toJSON(component)),
        prompts_per_step: ppo.rolloutBatchSize,
        num_generations: 1,
        num_ppo_epochs: ppo.ppoEpochs,
        mini_batch_size: ppo.minibatchSize,
        cliprange: 0.2,
        cliprange_high: 0.2,
        cliprange_value: 0.2,
        gamma: 1,
        lam: ppo.gaeLambda,
        whiten_advantages: true,
        vf_coef: 0.5,
        kl_coef: ppo.klCoefficient,
        kl_estimator: 'k1',
        kl_placement: 'reward',
        value_model: options.rewardModelDir,
        ...sampling,
      };
    }
    const config = parseRunConfig(
      {
        stage: options.algorithm,
        run_id: options.runId,
        output_dir: options.outputDir,
        model: options.modelDir,
        dataset: { train: options.promptsFile },
        seed: options.seed,
        train: { max_steps: s.steps, learning_rate: s.learningRate, max_grad_norm: 1 },
        [options.algorithm]: section,
      },
      `${options.algorithm} stage`,
    );
    const points: RlPoint[] = [];
    const correctKey = `rewards/${CORRECT_COMPONENT}`;
    const result = await runRl(resolveRlRunConfig(config), {
      signal: options.signal,
      logger: options.logger,
      callbacks: {
        onStep: (e) => {
          const p: RlPoint = {
            step: e.step,
            samples: e.step * perStep,
            score: e.metrics['objective/scores'],
            accuracy: options.algorithm === 'grpo' && typeof e.metrics[correctKey] === 'number' ? e.metrics[correctKey] : null,
            kl: e.metrics['objective/kl'],
          };
          points.push(p);
          options.onStep?.(p, e.totalSteps, e.metrics, e.samples ?? []);
        },
      },
    });
    if (result.status !== 'completed' || result.modelDir === null) throw new Error(`${options.algorithm.toUpperCase()} run ${options.runId} was cancelled at step ${result.step}`);
    return { runDir: result.runDir, modelDir: result.modelDir, points };
  } finally {
    await services.stop();
  }
}

/**
 * The first point of a curve whose rollout accuracy reaches `threshold`
 * (null when none does): claim 2's "samples to a given accuracy", and the KL
 * at which it was reached.
 */
export function firstReaching(points: readonly RlPoint[], threshold: number): RlPoint | null {
  return points.find((p) => p.accuracy !== null && p.accuracy >= threshold) ?? null;
}
