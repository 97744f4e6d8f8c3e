/**
 * @posttrain/proto: the wire contracts of posttrain (protos/posttrain/v1/*.proto)
 * as ts-proto code for @grpc/grpc-js, plus the Tensor helpers.
 *
 * The generated code lives in src/gen/ (never edited; `npm run gen` rewrites
 * it, `npm run gen:check` fails when it is stale). Everything else imports it
 * from here.
 *
 * @example
 * ```ts
 * import { credentials } from '@grpc/grpc-js';
 * import { PolicySamplerClient, GenerateRequest, FinishReason } from '@posttrain/proto';
 *
 * const client = new PolicySamplerClient('localhost:50051', credentials.createInsecure());
 * const req = GenerateRequest.fromPartial({
 *   prompts: [{ input: { $case: 'text', value: '12+7=' } }],
 *   n: 4,
 *   sampling: { temperature: 0.8, maxNewTokens: 16, logprobs: true },
 * });
 * client.generate(req).on('data', (res) => {
 *   for (const c of res.completions) if (c.finishReason === FinishReason.STOP) console.log(c.text);
 * });
 * ```
 */

// tensor.proto
export { DType, Tensor, dTypeFromJSON, dTypeToJSON } from './gen/posttrain/v1/tensor';

// common.proto: prompts, sampling, model description
export {
  ChatMessage,
  Conversation,
  FinishReason,
  GetInfoRequest,
  ModelDescription,
  Prompt,
  SamplingParams,
  TokenIds,
  finishReasonFromJSON,
  finishReasonToJSON,
} from './gen/posttrain/v1/common';

// logprobs.proto: ComputeLogProbs, shared by PolicySampler and ReferenceModel
export { LogProbsRequest, LogProbsResponse, LogProbsSequence } from './gen/posttrain/v1/logprobs';

// rewards.proto: reward components and verifiable rules, shared by RewardScorer and Trainer
export {
  AnswerExtraction,
  ExactMatchRule,
  ExtractionMode,
  FormatRule,
  LengthPenaltyRule,
  LengthUnit,
  Normalization,
  NumericMatchRule,
  RegexRule,
  RewardComponent,
  RewardModelRule,
  extractionModeFromJSON,
  extractionModeToJSON,
  lengthUnitFromJSON,
  lengthUnitToJSON,
} from './gen/posttrain/v1/rewards';

// policy_sampler.proto
export {
  BatchStats,
  Completion,
  GenerateRequest,
  GenerateResponse,
  PolicySamplerClient,
  PolicySamplerInfo,
  PolicySamplerService,
  TensorManifestEntry,
  WeightsAck,
  WeightsChunk,
  WeightsData,
  WeightsFormat,
  WeightsHeader,
  weightsFormatFromJSON,
  weightsFormatToJSON,
} from './gen/posttrain/v1/policy_sampler';
export type { PolicySamplerServer } from './gen/posttrain/v1/policy_sampler';

// reference_model.proto
export { ReferenceModelClient, ReferenceModelInfo, ReferenceModelService } from './gen/posttrain/v1/reference_model';
export type { ReferenceModelServer } from './gen/posttrain/v1/reference_model';

// reward_scorer.proto
export {
  ComponentScore,
  ItemScore,
  RewardScorerClient,
  RewardScorerInfo,
  RewardScorerService,
  ScoreItem,
  ScoreRequest,
  ScoreResponse,
} from './gen/posttrain/v1/reward_scorer';
export type { RewardScorerServer } from './gen/posttrain/v1/reward_scorer';

// trainer.proto
export {
  AdvantageEstimator,
  CancelRunRequest,
  Checkpoint,
  DatasetFields,
  DatasetFormat,
  DatasetSpec,
  DpoLossType,
  DpoSpec,
  GenerationSample,
  GenerationSamples,
  GetRunRequest,
  GrpoSpec,
  KlEstimator,
  KlPlacement,
  KlSpec,
  ListRunsRequest,
  ListRunsResponse,
  LogLevel,
  LogLine,
  LoraSpec,
  LossAggregation,
  LrSchedule,
  OptimizerSpec,
  PpoSpec,
  RewardModelSpec,
  RolloutServices,
  Run,
  RunEvent,
  RunFinished,
  RunSpec,
  RunState,
  SftSpec,
  StaleRolloutPolicy,
  StartRunRequest,
  StepMetrics,
  TrainerClient,
  TrainerService,
  WatchRunRequest,
  advantageEstimatorFromJSON,
  advantageEstimatorToJSON,
  datasetFormatFromJSON,
  datasetFormatToJSON,
  dpoLossTypeFromJSON,
  dpoLossTypeToJSON,
  klEstimatorFromJSON,
  klEstimatorToJSON,
  klPlacementFromJSON,
  klPlacementToJSON,
  logLevelFromJSON,
  logLevelToJSON,
  lossAggregationFromJSON,
  lossAggregationToJSON,
  lrScheduleFromJSON,
  lrScheduleToJSON,
  runStateFromJSON,
  runStateToJSON,
  staleRolloutPolicyFromJSON,
  staleRolloutPolicyToJSON,
} from './gen/posttrain/v1/trainer';
export type { TrainerServer } from './gen/posttrain/v1/trainer';

// Tensor <-> typed array helpers (zero-copy where the memory allows)
export { TensorFormatError, decodeTensor, decodeTensorAs, dtypeByteWidth, encodeTensor } from './tensor';
export type { DecodedTensor, TensorDType, TensorErrorReason, TensorTypedArray, TypedArrayByDType } from './tensor';

// LoadWeights streams: chunking (sender) and verified reassembly (receiver)
export { MAX_WEIGHTS_CHUNK_BYTES, WEIGHTS_CHUNK_BYTES, WeightsAllocationError, WeightsAssembler, WeightsStreamContract, WeightsUploadError, allocateUpload, sha256Hex, weightsChunks } from './weights-upload';
export type { AcceptedChunk } from './weights-upload';
export { WeightsSpool } from './weights-spool';
export type { SpooledWeights, WeightsSpoolOptions } from './weights-spool';
