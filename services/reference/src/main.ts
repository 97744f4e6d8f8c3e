/**
 * posttrain reference: the frozen reference (SFT) model. Serves per-token
 * log-probs of completions, for PPO's KL penalty and DPO's ratios.
 *
 * Run: `node --import tsx services/reference/src/main.ts --port 50052` (or `posttrain up`).
 */
import { hostname } from 'node:os';
import { ReferenceModelService } from '@posttrain/proto';
import { defineConfig, mainOf, type ServiceDefinitionOptions } from '@posttrain/rpc';
import { createReferenceHandlers } from './reference-handlers';

const config = defineConfig({
  maxBatchSequences: { kind: 'int', flag: 'max-batch-sequences', env: 'POSTTRAIN_MAX_BATCH_SEQUENCES', description: 'sequences per request and per forward pass', default: 256, min: 1 },
  maxBatchTokens: { kind: 'int', flag: 'max-batch-tokens', env: 'POSTTRAIN_MAX_BATCH_TOKENS', description: 'tokens per forward pass', default: 16_384, min: 1 },
});

export const referenceService: ServiceDefinitionOptions<typeof config> = {
  name: 'reference',
  summary: 'per-token log-probs of a frozen reference model',
  defaultPort: 50052,
  config,
  setup: async ({ server, config: c }) => {
    server.add('posttrain.v1.ReferenceModel', ReferenceModelService, createReferenceHandlers({ ...c, replicaId: `${hostname()}:${process.pid}` }));
  },
};

if (require.main === module) mainOf(referenceService);
