/**
 * Support for the serving tier's end-to-end tests and benchmark: tiny model
 * directories written with initModelDir and the built-in tokenizer, and
 * helpers over the gRPC clients.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModelConfig, initModelDir, type ModelConfig } from '@posttrain/model';
import { decodeTensor, type Completion, type GenerateRequest, type LogProbsResponse, type PolicySamplerService } from '@posttrain/proto';
import type { RpcClient } from '@posttrain/rpc';
import { buildBuiltinTokenizerFiles } from '@posttrain/tokenizer';

/** <|im_end|> of the built-in tokenizer: the tiny models' EOS. */
export const TINY_EOS = 2;

/** hidden 32, 2 layers, GQA 4/2 heads, vocabulary of the built-in tokenizer (101). Wider init than usual, so sampling is far from uniform. */
export function tinyConfig(task: 'causal-lm' | 'sequence-classification' = 'causal-lm', shape: { hiddenSize?: number; numLayers?: number; maxPositionEmbeddings?: number } = {}): ModelConfig {
  const c = createModelConfig({
    vocabSize: 101,
    hiddenSize: shape.hiddenSize ?? 32,
    intermediateSize: (shape.hiddenSize ?? 32) * 2,
    numLayers: shape.numLayers ?? 2,
    numHeads: 4,
    numKvHeads: 2,
    maxPositionEmbeddings: shape.maxPositionEmbeddings ?? 128,
    eosTokenId: TINY_EOS,
    padTokenId: 3,
    task,
  });
  return { ...c, initializerRange: 0.4 };
}

export async function writeTinyModel(seed: number, config: ModelConfig = tinyConfig()): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'posttrain-serving-')), 'model');
  const files = buildBuiltinTokenizerFiles();
  await initModelDir(dir, config, {
    seed,
    assets: {
      'tokenizer.json': JSON.stringify(files.tokenizerJson),
      'tokenizer_config.json': JSON.stringify(files.tokenizerConfig),
      'special_tokens_map.json': JSON.stringify(files.specialTokensMap),
    },
  });
  return dir;
}

/** Every completion of a Generate call, ordered by (prompt, sample). */
export async function generateAll(client: RpcClient<typeof PolicySamplerService>, request: GenerateRequest): Promise<Completion[]> {
  const out: Completion[] = [];
  for await (const res of client.serverStream('generate', request)) out.push(...res.completions);
  return out.sort((a, b) => a.promptIndex - b.promptIndex || a.sampleIndex - b.sampleIndex);
}

/** Rows of a LogProbsResponse, each cut to its completion length. */
export function logProbRows(res: LogProbsResponse): number[][] {
  const t = decodeTensor(res.logprobs!, 'logprobs');
  const width = t.shape[1];
  return res.completionLengths.map((n, i) => Array.from(t.data.subarray(i * width, i * width + n) as Float32Array));
}
