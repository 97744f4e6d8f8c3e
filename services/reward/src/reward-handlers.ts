import { GetInfoRequest, RewardScorerInfo, ScoreResponse, type RewardScorerService } from '@posttrain/proto';
import { RewardBudgetError, RewardPreconditionError, RewardValidationError, scoreItems, SUPPORTED_RULES, type RequestLimits, type RewardModelFn } from '@posttrain/rewards';
import { failedPrecondition, invalidArgument, resourceExhausted, type ServiceHandlers } from '@posttrain/rpc';
import { describeServedModel, type ServedModel } from '@posttrain/serving';

export interface RewardState {
  replicaId: string;
  maxBatchItems: number;
  /** The reward model (scalar head) and its scoring function, once loaded with --reward-model; absent = rules only. */
  rewardModel?: { served: ServedModel; score: RewardModelFn } | null;
  /** Components per request, pattern length and nesting; unset fields take the library's defaults. */
  limits?: Partial<RequestLimits>;
  /** Wall-clock budget of one request's regular expressions together (ms). */
  scoreTimeBudgetMs?: number;
  /** Wall-clock limit of one regex component over the batch (ms). */
  regexTimeLimitMs?: number;
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
        const limits = { limits: state.limits, timeBudgetMs: state.scoreTimeBudgetMs, regexTimeLimitMs: state.regexTimeLimitMs };
        const scores = await scoreItems(request.items, request.components, rm ? { ...limits, rewardModel: rm.score, rewardModelId: rm.served.modelId } : limits);
        return ScoreResponse.fromPartial({ scores });
      } catch (err) {
        if (err instanceof RewardValidationError) throw invalidArgument(err.field, err.problem);
        if (err instanceof RewardBudgetError) throw resourceExhausted(err.message);
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
