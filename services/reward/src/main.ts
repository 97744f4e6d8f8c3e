/**
 * posttrain reward: scores (prompt, completion) pairs with a weighted mix of
 * a reward model and verifiable rules, reporting every component.
 *
 * Run: `node --import tsx services/reward/src/main.ts --reward-model models/rm --port 50053` (or `posttrain up`).
 * Without --reward-model it scores rules only.
 */
import { RewardScorerService } from '@posttrain/proto';
import { defineConfig } from '@posttrain/flags';
import { mainOf, type ServiceDefinitionOptions } from '@posttrain/rpc';
import { createRewardModelFn, loadServiceModel } from '@posttrain/serving';
import { createRewardHandlers, type RewardState } from './reward-handlers';

const config = defineConfig({
  rewardModel: { kind: 'string', flag: 'reward-model', env: 'POSTTRAIN_REWARD_MODEL_DIR', description: 'reward model directory (a *ForSequenceClassification checkpoint with score.weight); unset = rules only' },
  maxBatchItems: { kind: 'int', flag: 'max-batch-items', env: 'POSTTRAIN_MAX_BATCH_ITEMS', description: 'items per Score request', default: 4096, min: 1 },
  rewardModelBatch: { kind: 'int', flag: 'reward-model-batch', env: 'POSTTRAIN_REWARD_MODEL_BATCH', description: 'items per reward-model forward pass', default: 32, min: 1 },
  maxComponents: { kind: 'int', flag: 'max-components', env: 'POSTTRAIN_MAX_COMPONENTS', description: 'components per Score request', default: 32, min: 1, max: 1000 },
  maxPatternChars: { kind: 'int', flag: 'max-pattern-chars', env: 'POSTTRAIN_MAX_PATTERN_CHARS', description: 'longest regular expression in a request', default: 1000, min: 1, max: 100_000 },
  maxRepetitionNesting: { kind: 'int', flag: 'max-repetition-nesting', env: 'POSTTRAIN_MAX_REPETITION_NESTING', description: 'how deeply a pattern may nest repetition operators (1 refuses (a+)+)', default: 1, min: 1, max: 10 },
  regexTimeLimitMs: { kind: 'int', flag: 'regex-time-limit-ms', env: 'POSTTRAIN_REGEX_TIME_LIMIT_MS', description: 'time limit of one regex component over a request (INVALID_ARGUMENT past it)', default: 1000, min: 1 },
  scoreTimeBudgetMs: { kind: 'int', flag: 'score-time-budget-ms', env: 'POSTTRAIN_SCORE_TIME_BUDGET_MS', description: "time budget of all of one request's regular expressions (RESOURCE_EXHAUSTED past it)", default: 5000, min: 1 },
});

export const rewardService: ServiceDefinitionOptions<typeof config> = {
  name: 'reward',
  summary: 'reward-model scores and verifiable rules, combined with weights',
  defaultPort: 50053,
  config,
  setup: async ({ server, config: c, log, replicaId }) => {
    const state: RewardState = {
      replicaId,
      maxBatchItems: c.maxBatchItems,
      rewardModel: null,
      limits: { maxComponents: c.maxComponents, maxPatternChars: c.maxPatternChars, maxRepetitionNesting: c.maxRepetitionNesting },
      regexTimeLimitMs: c.regexTimeLimitMs,
      scoreTimeBudgetMs: c.scoreTimeBudgetMs,
    };
    server.add('posttrain.v1.RewardScorer', RewardScorerService, createRewardHandlers(state));
    if (!c.rewardModel) return;
    // Health stays NOT_SERVING until the reward model is loaded.
    const ready = loadServiceModel(c.rewardModel, { log, label: 'reward model' }).then((served) => {
      state.rewardModel = { served, score: createRewardModelFn(served, { batchSize: c.rewardModelBatch }) };
      const { rewardStats, normalizeReward } = served.model.config;
      if (rewardStats) log.info(normalizeReward ? 'reward model scores are served standardised (normalize_reward)' : 'reward model scores are served raw (normalize_reward false)', { ...rewardStats });
    });
    return { ready };
  },
};

if (require.main === module) mainOf(rewardService);
