/**
 * @posttrain/serving: the domain logic of the serving tier, free of gRPC and
 * protobuf: a continuous-batching generation engine (admission, a bounded
 * queue, per-sequence seeds, stop strings and ids, cancellation, stats),
 * batched log-probs of (prompt, completion) pairs, verified weight swaps (full
 * safetensors or PEFT LoRA), and reward-model scoring for @posttrain/rewards.
 * Requests and results are plain types; the services convert their wire
 * messages to and from them, and map ServingError to gRPC statuses
 * (@posttrain/rpc's toRpcError).
 *
 * @example
 * ```ts
 * import { initBackend } from '@posttrain/backend';
 * import { GenerationEngine, loadServedModel, tokenizePrompt } from '@posttrain/serving';
 *
 * await initBackend();
 * const served = await loadServedModel('models/tiny');
 * const engine = new GenerationEngine(served, { maxBatchSequences: 32, maxBatchTokens: 65536, maxQueueDepth: 64, maxNewTokens: 64 });
 * const prompt = tokenizePrompt(served, { text: '12+7=' }, 'prompts[0]');
 * for await (const done of engine.submit({ prompts: [prompt], samplesPerPrompt: 4, sampling: { seed: 1, logprobs: true } })) {
 *   for (const completion of done) console.log(completion.sampleIndex, completion.text, completion.logprobs);
 * }
 * ```
 */
// Generation: the engine, its requests and results, prompts, errors.
export { GenerationEngine } from './generation-engine';
export type { EngineOptions, EngineInfo, LogProbsRequest } from './generation-engine';
export type { GenerationRequest, SamplingSettings, GeneratedCompletion, CompletionFinish } from './generation-request';
export { tokenizePrompt } from './prompt-tokens';
export type { PromptText } from './prompt-tokens';
export { ServingError, invalidField, preconditionFailed } from './serving-error';
export type { ServingErrorKind } from './serving-error';
export type { EngineStatsSnapshot } from './engine-stats';
// Served models.
export { loadServedModel, loadServiceModel, describeServedModel } from './served-model';
export type { ServedModel, ServedModelDescription, ServiceModelOptions } from './served-model';
// Log-probs of (prompt, completion) pairs.
export { computeBatchLogProbs, planLogProbBatches, validateLogProbsPairs } from './batch-log-probs';
export type { BatchLogProbs, BatchLogProbsOptions, LogProbsPair } from './batch-log-probs';
// Weight uploads.
export type { WeightsLoadResult } from './weight-swap';
export type { WeightsUpload, WeightsFormatName, WeightsPayload } from './weights-update';
// Reward-model scoring.
export { createRewardModelFn, rewardModelInput } from './reward-model-scorer';
export type { RewardModelScorerOptions, RewardModelItem } from './reward-model-scorer';
// Internal building blocks of the engine, exported for tests and benchmarks.
export { EngineStats } from './engine-stats';
export { mergeCaches, selectRows } from './batch-cache';
export type { BatchCache } from './batch-cache';
export { findStopString } from './find-stop-string';
export { prepareWeights, checkWeightsManifest } from './weights-update';
export type { PreparedWeights } from './weights-update';
