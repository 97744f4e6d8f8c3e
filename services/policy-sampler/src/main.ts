/**
 * posttrain policy-sampler: rollout generation for the trainer. Batched
 * sampling, per-token log-probs and versioned weight updates (LoadWeights).
 *
 * Run: `node --import tsx services/policy-sampler/src/main.ts --model models/tiny --port 50051`
 * (or `posttrain up`). Every option also reads a POSTTRAIN_* variable; see --help.
 * Without --model the replica serves, but model methods answer FAILED_PRECONDITION.
 */
import { constants as bufferConstants } from 'node:buffer';
import { tmpdir } from 'node:os';
import { PolicySamplerService } from '@posttrain/proto';
import { defineConfig } from '@posttrain/flags';
import { mainOf, type ServiceDefinitionOptions } from '@posttrain/rpc';
import { GenerationEngine, loadServiceModel } from '@posttrain/serving';
import { createPolicySamplerHandlers, type PolicySamplerState } from './policy-sampler-handlers';

const config = defineConfig({
  model: { kind: 'string', flag: 'model', env: 'POSTTRAIN_MODEL_DIR', description: 'model directory (Hugging Face layout) to serve; unset = no model (model methods answer FAILED_PRECONDITION)' },
  maxNewTokens: { kind: 'int', flag: 'max-new-tokens', env: 'POSTTRAIN_MAX_NEW_TOKENS', description: 'largest max_new_tokens a request may ask for', default: 1024, min: 1 },
  maxQueueDepth: { kind: 'int', flag: 'max-queue-depth', env: 'POSTTRAIN_MAX_QUEUE_DEPTH', description: 'Generate requests waiting beyond this answer RESOURCE_EXHAUSTED', default: 1024, min: 1 },
  maxBatchSequences: { kind: 'int', flag: 'max-batch-sequences', env: 'POSTTRAIN_MAX_BATCH_SEQUENCES', description: 'sequences per forward pass', default: 32, min: 1 },
  maxBatchTokens: { kind: 'int', flag: 'max-batch-tokens', env: 'POSTTRAIN_MAX_BATCH_TOKENS', description: 'tokens (prompt + max_new_tokens, summed over the batch) reserved per batch', default: 65_536, min: 1 },
  maxRequestSequences: { kind: 'int', flag: 'max-request-sequences', env: 'POSTTRAIN_MAX_REQUEST_SEQUENCES', description: 'largest n a request may ask for', default: 64, min: 1 },
  // Uploads above --upload-memory-bytes are written to a file under --upload-dir as they arrive and read back tensor by tensor,
  // so the bound is disk, not one Buffer (4 GiB on Node 20).
  maxUploadBytes: { kind: 'int', flag: 'max-upload-bytes', env: 'POSTTRAIN_MAX_UPLOAD_BYTES', description: 'largest LoadWeights upload; a larger header.total_bytes is INVALID_ARGUMENT before anything is allocated', default: 256 * 1024 ** 3, min: 1, max: Number.MAX_SAFE_INTEGER },
  uploadMemoryBytes: { kind: 'int', flag: 'upload-memory-bytes', env: 'POSTTRAIN_UPLOAD_MEMORY_BYTES', description: 'LoadWeights uploads up to this size are assembled in memory; larger ones are written to --upload-dir', default: 256 * 1024 ** 2, min: 0, max: bufferConstants.MAX_LENGTH },
  uploadDir: { kind: 'string', flag: 'upload-dir', env: 'POSTTRAIN_UPLOAD_DIR', description: 'directory of the temporary files of large LoadWeights uploads (removed after each upload); an upload larger than its free space is RESOURCE_EXHAUSTED before any data is written', default: tmpdir() },
});

export const policySamplerService: ServiceDefinitionOptions<typeof config> = {
  name: 'policy-sampler',
  summary: 'batched rollout generation, log-probs and versioned weight updates',
  defaultPort: 50051,
  config,
  setup: async ({ server, config: c, log, replicaId }) => {
    const state: PolicySamplerState = { ...c, replicaId, engine: null };
    server.add('posttrain.v1.PolicySampler', PolicySamplerService, createPolicySamplerHandlers(state));
    if (!c.model) return;
    // Health stays NOT_SERVING until the model is loaded.
    const ready = loadServiceModel(c.model, { log }).then((served) => {
      state.engine = new GenerationEngine(served, { ...c, registry: server.metrics });
    });
    return { ready };
  },
};

if (require.main === module) mainOf(policySamplerService);
