/**
 * DPO's reference log-probs, computed once per run and kept in
 * <runDir>/reference_logps.json, so that a resumed run reads them instead of
 * running the reference model over the data again.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DataConfig, RecordSource, TokenizerLike } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { loadModel, sequenceTokenLogProbs } from '@posttrain/model';
import type { Logger } from '@posttrain/telemetry';
import type { ReferenceCache, ReferenceLogProbsFn } from './create-dpo-task';
import { computeReferenceCache } from './create-dpo-task';

function cacheToJson(cache: ReferenceCache): Record<string, [number, number, number, number]> {
  const out: Record<string, [number, number, number, number]> = {};
  for (const [line, r] of cache) out[String(line)] = [r.chosen, r.rejected, r.chosenTokens, r.rejectedTokens];
  return out;
}

function cacheFromJson(raw: unknown, source: string): ReferenceCache {
  if (typeof raw !== 'object' || raw === null) throw new Error(`${source}: expected an object of line -> [chosen, rejected, chosenTokens, rejectedTokens]`);
  const cache: ReferenceCache = new Map();
  for (const [line, v] of Object.entries(raw)) {
    if (!Array.isArray(v) || v.length !== 4 || v.some((x) => typeof x !== 'number')) throw new Error(`${source}: entry ${line} is ${JSON.stringify(v)}, expected 4 numbers`);
    cache.set(Number(line), { chosen: v[0], rejected: v[1], chosenTokens: v[2], rejectedTokens: v[3] });
  }
  return cache;
}

/** A frozen local model as a ReferenceLogProbsFn. */
function localReference(model: LlamaModel, batchSize: number): ReferenceLogProbsFn {
  return async ({ sequences, promptLengths }) => sequenceTokenLogProbs(model, sequences, { promptLengths, batchSize });
}

export interface ReferenceCacheRequest {
  runDir: string;
  train: RecordSource;
  eval: RecordSource | null;
  tokenizer: TokenizerLike;
  /** The data config the caches are computed with (evaluation order, no shuffling). */
  data: DataConfig;
  batchSize: number;
  /** Reference model directory, used when no `reference` function is given. */
  referenceModel: string;
  /** Reference log-probs from elsewhere (the reference service). */
  reference?: ReferenceLogProbsFn;
  logger: Logger;
}

/** The train and eval reference caches: read from the run directory, or computed and written there. */
export async function loadOrComputeReferenceCaches(request: ReferenceCacheRequest): Promise<{ train: ReferenceCache; eval: ReferenceCache | null }> {
  const path = join(request.runDir, 'reference_logps.json');
  if (existsSync(path)) {
    const raw = JSON.parse(await readFile(path, 'utf8')) as { train?: unknown; eval?: unknown };
    const train = cacheFromJson(raw.train, path);
    const evalCache = request.eval ? cacheFromJson(raw.eval, path) : null;
    request.logger.info('reference log-probs loaded from cache', { path, train: train.size });
    return { train, eval: evalCache };
  }
  let localModel: LlamaModel | null = null;
  let reference = request.reference;
  if (!reference) {
    localModel = await loadModel(request.referenceModel);
    reference = localReference(localModel, request.batchSize);
  }
  try {
    const data = { ...request.data, batchSize: request.batchSize };
    const train = await computeReferenceCache(request.train, request.tokenizer, data, reference);
    const evalCache = request.eval ? await computeReferenceCache(request.eval, request.tokenizer, data, reference) : null;
    await writeFile(path, JSON.stringify({ train: cacheToJson(train), eval: evalCache ? cacheToJson(evalCache) : null }));
    request.logger.info('reference log-probs computed', { train: train.size, eval: evalCache?.size ?? 0 });
    return { train, eval: evalCache };
  } finally {
    localModel?.dispose();
  }
}
