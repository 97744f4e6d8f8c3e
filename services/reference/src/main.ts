/**
 * posttrain reference: the frozen reference (SFT) model. Serves per-token
 * log-probs of completions, for PPO's KL penalty and DPO's ratios.
 *
 * Run: `node --import tsx services/reference/src/main.ts --model models/sft --port 50052` (or `posttrain up`).
 * Without --model the replica serves, but ComputeLogProbs answers FAILED_PRECONDITION.
 */
import { ReferenceModelService } from '@posttrain/proto';
import { defineConfig } from '@posttrain/flags';
import { mainOf, type ServiceDefinitionOptions } from '@posttrain/rpc';
import { loadServiceModel, type ServedModel } from '@posttrain/serving';
import { createReferenceHandlers, type ReferenceState } from './reference-handlers';

const config = defineConfig({
  model: { kind: 'string', flag: 'model', env: 'POSTTRAIN_MODEL_DIR', description: 'model directory (Hugging Face layout) to serve; unset = no model (ComputeLogProbs answers FAILED_PRECONDITION)' },
  maxBatchSequences: { kind: 'int', flag: 'max-batch-sequences', env: 'POSTTRAIN_MAX_BATCH_SEQUENCES', description: 'sequences per request and per forward pass', default: 256, min: 1 },
  maxBatchTokens: { kind: 'int', flag: 'max-batch-tokens', env: 'POSTTRAIN_MAX_BATCH_TOKENS', description: 'tokens per request (summed) and per forward pass (padded)', default: 16_384, min: 1 },
});

export const referenceService: ServiceDefinitionOptions<typeof config> = {
  name: 'reference',
  summary: 'per-token log-probs of a frozen reference model',
  defaultPort: 50052,
  config,
  setup: async ({ server, config: c, log, replicaId }) => {
    const state: ReferenceState = { ...c, replicaId, served: null };
    server.add('posttrain.v1.ReferenceModel', ReferenceModelService, createReferenceHandlers(state));
    const dir = c.model;
    if (!dir) return;
    // Health stays NOT_SERVING until the model is loaded.
    const checkLmHead = (served: ServedModel) => {
      if (!served.model.heads.lm) throw new Error(`${dir}: the model has no LM head; the reference serves a causal LM`);
    };
    const ready = loadServiceModel(dir, { log, check: checkLmHead }).then((served) => {
      state.served = served;
    });
    return { ready };
  },
};

if (require.main === module) mainOf(referenceService);
