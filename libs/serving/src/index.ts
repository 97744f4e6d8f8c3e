/**
 * @posttrain/serving: the domain logic of the serving tier, free of gRPC:
 * a continuous-batching generation engine (bounded queue, per-sequence seeds,
 * stop strings and ids, cancellation, stats), batched log-probs of
 * (prompt, completion) pairs, verified weight swaps (full safetensors or PEFT
 * LoRA), and reward-model scoring for @posttrain/rewards.
 *
 * @example
 * ```ts
 * import { initBackend } from '@posttrain/backend';
 * import { GenerateRequest } from '@posttrain/proto';
 * import { GenerationEngine, loadServedModel } from '@posttrain/serving';
 *
 * await initBackend();
 * const engine = new GenerationEngine(await loadServedModel('models/tiny'), { maxBatchSequences: 32, maxBatchTokens: 65536, maxQueueDepth: 64, maxNewTokens: 64 });
 * const req = GenerateRequest.fromPartial({ prompts: [{ input: { $case: 'text', value: '12+7=' } }], n: 4, sampling: { seed: 1, logprobs: true } });
 * for await (const done of engine.submit(req)) for (const c of done) console.log(c.sampleIndex, c.text, c.logprobs);
 * ```
 */
export { ServingError, invalidField, preconditionFailed } from './serving-error';
export type { ServingErrorKind } from './serving-error';
export { loadServedModel, describeServedModel } from './served-model';
export type { ServedModel } from './served-model';
export { GenerationEngine } from './generation-engine';
export { mergeCaches, selectRows } from './batch-cache';
export type { BatchCache } from './batch-cache';
export type { EngineOptions, EngineInfo, WeightsLoadResult } from './generation-engine';
export type { EngineStatsSnapshot } from './engine-stats';
export { EngineStats } from './engine-stats';
export { findStopString } from './find-stop-string';
export { computeBatchLogProbs, planLogProbBatches, validateLogProbsPairs } from './batch-log-probs';
export type { BatchLogProbs, BatchLogProbsOptions, LogProbsPair } from './batch-log-probs';
export { prepareWeights, checkWeightsManifest } from './weights-update';
export type { PreparedWeights } from './weights-update';
export { createRewardModelFn, rewardModelInput } from './reward-model-scorer';
export type { RewardModelScorerOptions } from './reward-model-scorer';
export { toRpcError } from './serving-rpc-error';
