/**
 * An online RL run from its config: PPO (ppo.ts) or the GRPO family (grpo.ts).
 */
import type { RunRlOptions, RunRlResult } from './online-run';
import { runGrpo } from './grpo';
import { runPpo } from './ppo';
import type { RlRunConfig } from './rl-run-config';

/** Runs the config's algorithm to completion or cancellation. */
export function runRl(config: RlRunConfig, options: RunRlOptions = {}): Promise<RunRlResult> {
  return config.algorithm === 'ppo' ? runPpo(config, options) : runGrpo(config, options);
}
