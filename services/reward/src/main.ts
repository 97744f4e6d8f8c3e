/**
 * posttrain reward: scores (prompt, completion) pairs with a weighted mix of
 * a reward model and verifiable rules, reporting every component.
 *
 * Run: `node --import tsx services/reward/src/main.ts --port 50053` (or `posttrain up`).
 */
import { hostname } from 'node:os';
import { RewardScorerService } from '@posttrain/proto';
import { defineConfig, mainOf, type ServiceDefinitionOptions } from '@posttrain/rpc';
import { createRewardHandlers } from './reward-handlers';

const config = defineConfig({
  maxBatchItems: { kind: 'int', flag: 'max-batch-items', env: 'POSTTRAIN_MAX_BATCH_ITEMS', description: 'items per Score request', default: 4096, min: 1 },
});

export const rewardService: ServiceDefinitionOptions<typeof config> = {
  name: 'reward',
  summary: 'reward-model scores and verifiable rules, combined with weights',
  defaultPort: 50053,
  config,
  setup: async ({ server, config: c }) => {
    server.add('posttrain.v1.RewardScorer', RewardScorerService, createRewardHandlers({ ...c, replicaId: `${hostname()}:${process.pid}` }));
  },
};

if (require.main === module) mainOf(rewardService);
