import { GetInfoRequest, LogProbsResponse, ReferenceModelInfo, encodeTensor, type ReferenceModelService } from '@posttrain/proto';
import { failedPrecondition, invalidArgument, toRpcError, validateLogProbsRequest, type ServiceHandlers } from '@posttrain/rpc';
import { computeBatchLogProbs, describeServedModel, type ServedModel } from '@posttrain/serving';

export interface ReferenceState {
  replicaId: string;
  maxBatchSequences: number;
  maxBatchTokens: number;
  /** The frozen model; null while loading or when started without --model. */
  served: ServedModel | null;
}

/**
 * ReferenceModel handlers: validate, compute batched log-probs of the frozen
 * model (@posttrain/serving), encode the padded [B, Tmax] tensor and lengths.
 * Malformed input is INVALID_ARGUMENT with or without a model; without one,
 * ComputeLogProbs is FAILED_PRECONDITION.
 */
export function createReferenceHandlers(state: ReferenceState): ServiceHandlers<typeof ReferenceModelService> {
  return {
    computeLogProbs: async (request) => {
      validateLogProbsRequest(request, { maxSequences: state.maxBatchSequences, ...(state.served ? { vocabSize: state.served.model.config.vocabSize } : {}) });
      const total = request.sequences.reduce((s, q) => s + q.promptIds.length + q.completionIds.length, 0);
      if (total > state.maxBatchTokens) throw invalidArgument('sequences', `${total} tokens (prompt + completion, summed), more than max_batch_tokens ${state.maxBatchTokens}; split the request`);
      const served = state.served;
      if (!served) throw failedPrecondition('no model loaded on this replica (start it with --model DIR or POSTTRAIN_MODEL_DIR, and wait for SERVING)');
      if (request.minWeightsVersion !== undefined && request.minWeightsVersion > 0) {
        throw failedPrecondition(`the reference model's weights never change (version 0); min_weights_version ${request.minWeightsVersion} cannot be met`);
      }
      try {
        const out = await computeBatchLogProbs(served.model, request.sequences, {
          temperature: request.temperature,
          returnEntropies: request.returnEntropies,
          maxBatchSequences: state.maxBatchSequences,
          maxBatchTokens: state.maxBatchTokens,
        });
        return LogProbsResponse.fromPartial({
          logprobs: encodeTensor(out.logprobs, [out.lengths.length, out.maxLength]),
          completionLengths: out.lengths,
          entropies: out.entropies ? encodeTensor(out.entropies, [out.lengths.length, out.maxLength]) : undefined,
          weightsVersion: 0,
        });
      } catch (err) {
        throw toRpcError(err);
      }
    },
    getInfo: async (_request: GetInfoRequest) =>
      ReferenceModelInfo.fromPartial({
        model: state.served ? describeServedModel(state.served) : undefined,
        maxBatchSequences: state.maxBatchSequences,
        maxBatchTokens: state.maxBatchTokens,
        replicaId: state.replicaId,
      }),
  };
}
