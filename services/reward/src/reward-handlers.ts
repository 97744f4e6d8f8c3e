import { GetInfoRequest, RewardScorerInfo, type RewardScorerService, type ScoreRequest } from '@posttrain/proto';
import { invalidArgument, unimplemented, type ServiceHandlers } from '@posttrain/rpc';

export interface RewardState {
  replicaId: string;
  maxBatchItems: number;
}

function validateScoreRequest(req: ScoreRequest, maxItems: number): void {
  if (req.items.length === 0) throw invalidArgument('items', 'empty, expected at least one (prompt, completion) item');
  if (req.items.length > maxItems) throw invalidArgument('items', `got ${req.items.length} items, expected at most ${maxItems}`);
  if (req.components.length === 0) throw invalidArgument('components', 'empty, expected at least one reward component');
  req.components.forEach((c, i) => {
    if (!c.rule) throw invalidArgument(`components[${i}].rule`, 'not set, expected one of reward_model, exact_match, numeric_match, regex, format, length_penalty');
    if (!Number.isFinite(c.weight)) throw invalidArgument(`components[${i}].weight`, `got ${c.weight}, expected a finite number`);
  });
}

/** RewardScorer handlers: validation now; scoring arrives with the rules library and the model core. */
export function createRewardHandlers(state: RewardState): ServiceHandlers<typeof RewardScorerService> {
  return {
    score: async (request) => {
      validateScoreRequest(request, state.maxBatchItems);
      throw unimplemented('Score', 'reward components are not wired in yet; requests are validated, then refused');
    },
    getInfo: async (_request: GetInfoRequest) => RewardScorerInfo.fromPartial({ supportedRules: [], maxBatchItems: state.maxBatchItems, replicaId: state.replicaId }),
  };
}
