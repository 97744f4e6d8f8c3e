import { GetInfoRequest, PolicySamplerInfo, type PolicySamplerService, type WeightsChunk } from '@posttrain/proto';
import { invalidArgument, unimplemented, validateGenerateRequest, validateLogProbsRequest, validateWeightsHeader, type ServiceHandlers } from '@posttrain/rpc';

export interface PolicySamplerState {
  replicaId: string;
  maxNewTokens: number;
  maxQueueDepth: number;
  maxBatchSequences: number;
  maxRequestSequences: number;
  maxUploadBytes: number;
}

const NEEDS_MODEL = 'this replica has no model core yet (libs/model); requests are validated, then refused';

/**
 * PolicySampler handlers: decode and validate, then hand over to the domain.
 * Until the model core is wired in, methods that need a model answer
 * UNIMPLEMENTED after validation, and GetInfo reports the true state: no
 * model, weights version 0, an empty queue.
 */
export function createPolicySamplerHandlers(state: PolicySamplerState): ServiceHandlers<typeof PolicySamplerService> {
  return {
    generate: async function* (request) {
      validateGenerateRequest(request, { maxNewTokens: state.maxNewTokens, maxSamplesPerPrompt: state.maxRequestSequences });
      yield* [];
      throw unimplemented('Generate', NEEDS_MODEL);
    },
    computeLogProbs: async (request) => {
      validateLogProbsRequest(request);
      throw unimplemented('ComputeLogProbs', NEEDS_MODEL);
    },
    loadWeights: async (chunks: AsyncIterable<WeightsChunk>) => {
      for await (const chunk of chunks) {
        if (chunk.chunk?.$case !== 'header') throw invalidArgument('chunk', `the first chunk must be a header, got ${chunk.chunk?.$case ?? 'an empty chunk'}`);
        validateWeightsHeader(chunk.chunk.value, state.maxUploadBytes);
        throw unimplemented('LoadWeights', NEEDS_MODEL);
      }
      throw invalidArgument('chunk', 'the upload stream was empty, expected a header chunk first');
    },
    getInfo: async (_request: GetInfoRequest) =>
      PolicySamplerInfo.fromPartial({
        weightsVersion: 0,
        queueDepth: 0,
        maxBatchSequences: state.maxBatchSequences,
        maxRequestSequences: state.maxRequestSequences,
        maxQueueDepth: state.maxQueueDepth,
        maxNewTokens: state.maxNewTokens,
        replicaId: state.replicaId,
      }),
  };
}
