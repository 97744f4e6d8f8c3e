/**
 * @posttrain/model: a Llama-family decoder (Llama, Qwen2, Mistral config.json variants) in tfjs:
 * RMSNorm, RoPE (rotate_half), SwiGLU, grouped-query attention, tied or untied embeddings, optional
 * q/k/v biases; an LM head and a scalar (value/reward) head; per-token log-probs; batched KV-cache
 * sampling; Hugging Face checkpoint directories; PEFT-layout LoRA adapters; a throughput benchmark.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { loadModel, tokenLogProbs, generate, saveModel } from '@posttrain/model';
 * const model = await loadModel('models/tiny');                      // config.json + model.safetensors
 * const [c] = generate(model, [[1, 5, 9]], { maxNewTokens: 16, temperature: 0.8, seed: 1 });
 * // c.tokens, c.logProbs (under softmax(logits / 0.8)), c.finishReason: 'stop' | 'length'
 * const opt: tf.Optimizer = tf.train.adam(1e-4); // the base type takes variableGrads' map
 * const { value, grads } = tf.variableGrads(
 *   () => tf.neg(tf.mean(tokenLogProbs(model, { inputIds: [[1, 5, 9, ...c.tokens]] }))) as tf.Scalar,
 *   model.trainableVariables(),
 * );
 * opt.applyGradients(grads);
 * tf.dispose([value, ...Object.values(grads)]);
 * await saveModel(model, 'models/tiny-sft');                          // atomic
 * ```
 */
export { createModelConfig, parseModelConfig, modelConfigToJson, countParameters, rewardNormalization, ModelConfigError } from './model-config';
export type { ModelConfig, ModelShape, ModelType, RewardStats } from './model-config';
export { LlamaModel, initModel, modelFromHfTensors, modelToHfTensors, assignHfTensors, cloneModel, expectedWeightShapes } from './llama-model';
export type { ModelHeads, LoraSettings, LoraState, LoraWeights, GenerationDefaults, HfTensorMap } from './llama-model';
export { forwardHidden, lmLogits, scoreHeadValues, positionsFromMask, positionsFromSegments } from './transformer-forward';
export type { ForwardTokens, ForwardOptions, ForwardResult, KvCache } from './transformer-forward';
export { toForwardTokens, padBatch } from './token-batch';
export type { TokenBatch } from './token-batch';
export { tokenLogProbs, tokenLogProbsAndEntropy, forwardLogits, sequenceTokenLogProbs, pickTargets } from './token-log-probs';
export type { LogProbOptions } from './token-log-probs';
export { tokenValues, sequenceScores, withScoreHead } from './score-head';
export { generate } from './generate';
export type { GenerateOptions, Completion, FinishReason } from './generate';
export { sampleToken, leftPadPrompts, lastPositionLogits, appendCacheColumn } from './decode-step';
export { cacheColumns } from './attention';
export type { SamplingParams } from './decode-step';
export { loadModel, saveModel, initModelDir, modelInfo, readModelConfig, parseGenerationConfig, ASSET_FILES } from './model-checkpoint';
export type { SaveModelOptions, InitModelDirOptions, ModelInfo } from './model-checkpoint';
export { applyLora, removeLora, mergeLora, saveLoraAdapter, loadLoraAdapter, parseAdapterConfig, validateLoraSettings, LORA_TARGETS, LORA_MODULES_TO_SAVE } from './lora';
export { logProbsJsonlText, logProbsJsonlFile } from './log-probs-jsonl';
export type { LogProbsJsonlOptions } from './log-probs-jsonl';
export { runModelBench } from './run-model-bench';
export type { BenchOptions, BenchResult } from './run-model-bench';
export { matMul2d, batchMatMul } from './mat-mul';
