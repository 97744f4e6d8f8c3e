/**
 * @posttrain/model: a Llama-family decoder (Llama, Qwen2, Mistral layouts) in tfjs.
 *
 * @example
 * ```ts
 * import { createModelConfig, initModel, tokenLogProbs } from '@posttrain/model';
 * const model = initModel(createModelConfig({ hiddenSize: 64, numLayers: 2 }), { seed: 1 });
 * const lp = tokenLogProbs(model, { inputIds: [[1, 2, 3]] }); // [1, 3]: log p(token t | tokens < t)
 * ```
 */
export { createModelConfig, parseModelConfig, modelConfigToJson, countParameters, ModelConfigError } from './model-config';
export type { ModelConfig, ModelShape, ModelType } from './model-config';
export { LlamaModel, initModel, modelFromHfTensors, modelToHfTensors, expectedWeightShapes } from './llama-model';
export type { ModelHeads, LoraSettings, LoraState, LoraWeights, GenerationDefaults, HfTensorMap } from './llama-model';
export { forwardHidden, lmLogits, scoreHeadValues, positionsFromMask } from './transformer-forward';
export type { ForwardTokens, ForwardOptions, ForwardResult, KvCache } from './transformer-forward';
export { toForwardTokens, padBatch } from './token-batch';
export type { TokenBatch } from './token-batch';
export { tokenLogProbs, forwardLogits, sequenceLogProbs } from './token-log-probs';
export type { LogProbOptions } from './token-log-probs';
export { matMul2d, batchMatMul } from './mat-mul';
export { loadModel, saveModel, initModelDir, modelInfo, readModelConfig, parseGenerationConfig, ASSET_FILES } from './model-checkpoint';
export type { SaveModelOptions, InitModelDirOptions, ModelInfo } from './model-checkpoint';
export { generate, sampleToken } from './generate';
export type { GenerateOptions, Completion, FinishReason } from './generate';
export { tokenValues, sequenceScores, withScoreHead } from './score-head';
export { applyLora, removeLora, mergeLora, saveLoraAdapter, loadLoraAdapter, parseAdapterConfig, validateLoraSettings, LORA_TARGETS } from './lora';
export { logProbsJsonlText, logProbsJsonlFile } from './log-probs-jsonl';
export type { LogProbsJsonlOptions } from './log-probs-jsonl';
export { runModelBench } from './run-model-bench';
export type { BenchOptions, BenchResult } from './run-model-bench';
