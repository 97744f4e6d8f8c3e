import { GetInfoRequest, RewardScorerInfo, ScoreResponse, type RewardScorerService } from '@posttrain/proto';
import { RewardPreconditionError, RewardValidationError, scoreItems, SUPPORTED_RULES } from '@posttrain/rewards';
import { failedPrecondition, invalidArgument, type ServiceHandlers } from '@posttrain/rpc';

export interface RewardState {
  replicaId: string;
  maxBatchItems: number;
}

/**
 * RewardScorer handlers: decode, validate the batch size, score with the
 * rules library, encode. A bad component or item is INVALID_ARGUMENT naming
 * its field; a reward-model component on a replica without a reward model is
 * FAILED_PRECONDITION (reward models are served once the model core is wired in).
 */
export function createRewardHandlers(state: RewardState): ServiceHandlers<typeof RewardScorerService> {
  return {
    score: async (request) => {
      if (request.items.length === 0) throw invalidArgument('items', 'empty, expected at least one (prompt, completion) item');
      if (request.items.length > state.maxBatchItems) throw invalidArgument('items', `got ${request.items.length} items, expected at most ${state.maxBatchItems}`);
      try {
        return ScoreResponse.fromPartial({ scores: await scoreItems(request.items, request.components) });
      } catch (err) {
        if (err instanceof RewardValidationError) throw invalidArgument(err.field, err.problem);
        if (err instanceof RewardPreconditionError) throw failedPrecondition(`${err.message} (this replica serves no reward model)`);
        throw err;
      }
    },
    getInfo: async (_request: GetInfoRequest) =>
      RewardScorerInfo.fromPartial({ supportedRules: SUPPORTED_RULES.filter((r) => r !== 'reward_model'), maxBatchItems: state.maxBatchItems, replicaId: state.replicaId }),
  };
}
