import { GetInfoRequest, RewardScorerInfo, ScoreResponse, type RewardScorerService } from '@posttrain/proto';
import { RewardPreconditionError, RewardValidationError, scoreItems, SUPPORTED_RULES, type RewardModelFn } from '@posttrain/rewards';
import { failedPrecondition, invalidArgument, type ServiceHandlers } from '@posttrain/rpc';
import { describeServedModel, type ServedModel } from '@posttrain/serving';

export interface RewardState {
  replicaId: string;
  maxBatchItems: number;
  /** The reward model (scalar head) and its scoring function, once loaded with --reward-model; absent = rules only. */
  rewardModel?: { served: ServedModel; score: RewardModelFn } | null;
}

/**
 * RewardScorer handlers: decode, validate the batch size, score with the
 * rules library and (when loaded) the reward model, encode. A bad component
 * or item is INVALID_ARGUMENT naming its field; a reward-model component on a
 * replica without a reward model is FAILED_PRECONDITION.
 */
export function createRewardHandlers(state: RewardState): ServiceHandlers<typeof RewardScorerService> {
  return {
    score: async (request) => {
      if (request.items.length === 0) throw invalidArgument('items', 'empty, expected at least one (prompt, completion) item');
      if (request.items.length > state.maxBatchItems) throw invalidArgument('items', `got ${request.items.length} items, expected at most ${state.maxBatchItems}`);
      const rm = state.rewardModel;
      try {
        const scores = await scoreItems(request.items, request.components, rm ? { rewardModel: rm.score, rewardModelId: rm.served.modelId } : {});
        return ScoreResponse.fromPartial({ scores });
      } catch (err) {
        if (err instanceof RewardValidationError) throw invalidArgument(err.field, err.problem);
        if (err instanceof RewardPreconditionError) throw failedPrecondition(rm ? err.message : `${err.message} (start the replica with --reward-model DIR)`);
        throw err;
      }
    },
    getInfo: async (_request: GetInfoRequest) =>
      RewardScorerInfo.fromPartial({
        rewardModel: state.rewardModel ? describeServedModel(state.rewardModel.served) : undefined,
        supportedRules: SUPPORTED_RULES.filter((r) => r !== 'reward_model' || state.rewardModel),
        maxBatchItems: state.maxBatchItems,
        replicaId: state.replicaId,
      }),
  };
}
