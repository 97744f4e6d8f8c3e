/**
 * posttrain trainer: runs SFT, reward-model, DPO, PPO and GRPO, and drives
 * the sampler pool, the reference and the reward service for the online stages.
 *
 * Run: `node --import tsx services/trainer/src/main.ts --port 50054` (or `posttrain up`).
 */
import { resolve } from 'node:path';
import { initBackend } from '@posttrain/backend';
import { TrainerService } from '@posttrain/proto';
import { defineConfig, mainOf, type ServiceDefinitionOptions } from '@posttrain/rpc';
import { RunRegistry } from './run-registry';
import { createTrainerHandlers } from './trainer-handlers';

const config = defineConfig({
  runsDir: { kind: 'string', flag: 'runs-dir', env: 'POSTTRAIN_RUNS_DIR', description: 'where runs/<id>/ directories are written', default: 'runs' },
  samplerAddresses: { kind: 'list', flag: 'sampler-addresses', env: 'POSTTRAIN_SAMPLER_ADDRESSES', description: 'policy samplers for PPO/GRPO runs whose spec names none (comma-separated)', default: [] as string[] },
  referenceAddress: { kind: 'string', flag: 'reference-address', env: 'POSTTRAIN_REFERENCE_ADDRESS', description: 'reference service for PPO/GRPO runs whose spec names none', default: '' },
  rewardAddress: { kind: 'string', flag: 'reward-address', env: 'POSTTRAIN_REWARD_ADDRESS', description: 'reward service for PPO/GRPO runs whose spec names none', default: '' },
});

export const trainerService: ServiceDefinitionOptions<typeof config> = {
  name: 'trainer',
  summary: 'SFT, reward-model, DPO, PPO and GRPO runs',
  defaultPort: 50054,
  config,
  setup: async ({ server, config: c, log }) => {
    const registry = new RunRegistry(resolve(c.runsDir), log);
    server.add('posttrain.v1.Trainer', TrainerService, createTrainerHandlers(registry, { samplerAddresses: c.samplerAddresses, referenceAddress: c.referenceAddress, rewardAddress: c.rewardAddress }));
    return { ready: initBackend({ logger: log }).then(() => undefined) };
  },
};

if (require.main === module) mainOf(trainerService);
