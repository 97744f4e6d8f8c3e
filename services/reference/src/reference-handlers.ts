import { GetInfoRequest, ReferenceModelInfo, type ReferenceModelService } from '@posttrain/proto';
import { unimplemented, validateLogProbsRequest, type ServiceHandlers } from '@posttrain/rpc';

export interface ReferenceState {
  replicaId: string;
  maxBatchSequences: number;
  maxBatchTokens: number;
}

/**
 * ReferenceModel handlers. ComputeLogProbs validates its request and, until
 * the model core is wired in, answers UNIMPLEMENTED; GetInfo reports the
 * true state (no model loaded).
 */
export function createReferenceHandlers(state: ReferenceState): ServiceHandlers<typeof ReferenceModelService> {
  return {
    computeLogProbs: async (request) => {
      validateLogProbsRequest(request, { maxSequences: state.maxBatchSequences });
      throw unimplemented('ComputeLogProbs', 'this replica has no model core yet (libs/model); requests are validated, then refused');
    },
    getInfo: async (_request: GetInfoRequest) =>
      ReferenceModelInfo.fromPartial({ maxBatchSequences: state.maxBatchSequences, maxBatchTokens: state.maxBatchTokens, replicaId: state.replicaId }),
  };
}
