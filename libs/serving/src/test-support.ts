/**
 * Test support (not exported): a tiny Llama-shaped model directory with the
 * built-in tokenizer, and the cpu backend. Weights are drawn wider than the
 * usual initializer range so next-token distributions are far from uniform
 * and sampling paths actually differ.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createModelConfig, initModelDir, type ModelConfig } from '@posttrain/model';
import { buildBuiltinTokenizerFiles } from '@posttrain/tokenizer';

export const TINY_EOS = 2; // <|im_end|>

export function tinyConfig(task: 'causal-lm' | 'sequence-classification' = 'causal-lm'): ModelConfig {
  const c = createModelConfig({ vocabSize: 101, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 96, eosTokenId: TINY_EOS, padTokenId: 3, task });
  return { ...c, initializerRange: 0.4 };
}

export async function writeTinyModelDir(seed: number, task: 'causal-lm' | 'sequence-classification' = 'causal-lm'): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'serving-test-')), 'model');
  const files = buildBuiltinTokenizerFiles();
  await initModelDir(dir, tinyConfig(task), {
    seed,
    assets: {
      'tokenizer.json': JSON.stringify(files.tokenizerJson),
      'tokenizer_config.json': JSON.stringify(files.tokenizerConfig),
      'special_tokens_map.json': JSON.stringify(files.specialTokensMap),
    },
  });
  return dir;
}

export async function useCpuBackend(): Promise<void> {
  await tf.setBackend('cpu');
}
