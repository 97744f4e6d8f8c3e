import { test, describe, before, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { applyLora, loadLoraAdapter, loadModel, modelToHfTensors, saveLoraAdapter } from '@posttrain/model';
import { serializeSafetensors } from '@posttrain/safetensors';
import { computeBatchLogProbs } from './batch-log-probs';
import { GenerationEngine } from './generation-engine';
import type { GeneratedCompletion, GenerationRequest } from './generation-request';
import { loadServedModel, type ServedModel } from './served-model';
import { ServingError } from './serving-error';
import type { WeightsFormatName, WeightsUpload } from './weights-update';
import { useCpuBackend, writeTinyModelDir } from './test-support';

let served: ServedModel;
let baseDir: string;
let otherDir: string;
const limits = { maxBatchSequences: 8, maxBatchTokens: 4096, maxQueueDepth: 8, maxNewTokens: 40 };
const greedy: GenerationRequest = { prompts: [[10, 11, 12]], sampling: { temperature: 0, maxNewTokens: 6, stopTokenIds: [], logprobs: true } };
const pairs = [{ promptIds: [10, 11, 12], completionIds: [13, 14, 15, 16] }];

before(async () => {
  await useCpuBackend();
  baseDir = await writeTinyModelDir(7);
  otherDir = await writeTinyModelDir(8);
});
// Uploads change the served model, so every test starts from a fresh copy of the base.
beforeEach(async () => {
  served = await loadServedModel(baseDir);
});
afterEach(() => served.model.dispose());

async function collect(stream: AsyncIterable<GeneratedCompletion[]>): Promise<GeneratedCompletion[]> {
  const out: GeneratedCompletion[] = [];
  for await (const b of stream) out.push(...b);
  return out;
}

function header(version: number, bytes: Uint8Array, format: WeightsFormatName = 'safetensors-full', adapterConfigJson = ''): WeightsUpload {
  return { version, format, sha256: createHash('sha256').update(bytes).digest('hex'), adapterConfigJson, manifest: [] };
}

const isKind = (kind: string, field?: string) => (e: unknown) => e instanceof ServingError && e.kind === kind && (field === undefined || e.field === field);

describe('weight updates', () => {
  test('a full upload swaps every weight: outputs equal the uploaded model\'s; same version + sha is a duplicate; an older one is refused', async () => {
    const engine = new GenerationEngine(served, limits);
    const before = await collect(engine.submit(greedy));
    const bytes = await readFile(join(otherDir, 'model.safetensors'));
    const ack = await engine.loadWeights(header(1, bytes), bytes);
    assert.deepEqual(ack, { version: 1, duplicate: false, tensorsLoaded: served.model.weights.size });
    const after = await collect(engine.submit(greedy));
    assert.equal(after[0].weightsVersion, 1);
    const other = await loadServedModel(otherDir);
    const expected = await collect(new GenerationEngine(other, limits).submit(greedy));
    assert.deepEqual(after[0].tokenIds, expected[0].tokenIds);
    assert.notDeepEqual(after[0].logprobs, before[0].logprobs);
    after[0].logprobs.forEach((lp, i) => assert.ok(Math.abs(lp - expected[0].logprobs[i]) <= 1e-5));
    other.model.dispose();
    assert.deepEqual(await engine.loadWeights(header(1, bytes), bytes), { version: 1, duplicate: true, tensorsLoaded: 0 });
    const changed = new Uint8Array(bytes);
    changed[changed.length - 1] ^= 1;
    await assert.rejects(engine.loadWeights(header(1, changed), changed), isKind('failed-precondition', 'header.version'));
    engine.close();
  });

  test('mismatched uploads are refused before anything changes: wrong shape, missing, unexpected, non-float, corrupt', async () => {
    const engine = new GenerationEngine(served, limits);
    const reference = await engine.computeLogProbs({ pairs, returnEntropies: false });
    const good = modelToHfTensors(served.model);
    const variants: [string, (m: Map<string, { shape: number[]; data: Float32Array }>) => void][] = [
      ['shape', (m) => m.set('model.norm.weight', { shape: [33], data: new Float32Array(33) })],
      ['missing', (m) => m.delete('model.layers.1.mlp.up_proj.weight')],
      ['unexpected', (m) => m.set('model.layers.9.mlp.up_proj.weight', { shape: [2], data: new Float32Array(2) })],
      ['nan', (m) => m.set('model.norm.weight', { shape: [32], data: new Float32Array(32).fill(NaN) })],
    ];
    for (const [what, mutate] of variants) {
      const tensors = new Map(good);
      mutate(tensors);
      const bytes = serializeSafetensors(tensors);
      await assert.rejects(engine.loadWeights(header(5, bytes), bytes), isKind('invalid-argument', 'data'), what);
    }
    const garbage = new TextEncoder().encode('definitely not safetensors');
    await assert.rejects(engine.loadWeights(header(5, garbage), garbage), isKind('invalid-argument', 'data'));
    assert.equal(engine.weightsVersion, 0);
    const after = await engine.computeLogProbs({ pairs, returnEntropies: false });
    assert.deepEqual(after.logprobs, reference.logprobs);
    engine.close();
  });

  test('a manifest naming a wrong shape is refused from the header alone', () => {
    const engine = new GenerationEngine(served, limits);
    const h: WeightsUpload = { ...header(2, new Uint8Array(1)), manifest: [{ name: 'model.norm.weight', shape: [31] }] };
    assert.throws(() => engine.checkUploadHeader(h), isKind('invalid-argument', 'header.manifest[0].shape'));
    engine.close();
  });

  test('a LoRA adapter upload computes what libs/model computes with the same adapter loaded from disk (tol 1e-5)', async () => {
    const engine = new GenerationEngine(served, limits);
    // An adapter with non-zero B so that it changes the outputs.
    const trained = await loadModel(otherDir);
    applyLora(trained, { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, { seed: 1 });
    for (const w of trained.lora!.adapters.values()) w.b.assign(tf.randomNormal(w.b.shape, 0, 0.5, 'float32', 3));
    const adapterDir = join(await mkdtemp(join(tmpdir(), 'lora-')), 'adapter');
    await saveLoraAdapter(trained, adapterDir);
    trained.dispose();
    const bytes = await readFile(join(adapterDir, 'adapter_model.safetensors'));
    const cfg = await readFile(join(adapterDir, 'adapter_config.json'), 'utf8');
    const baseLp = await engine.computeLogProbs({ pairs, returnEntropies: false });
    const ack = await engine.loadWeights(header(3, bytes, 'lora-adapter', cfg), bytes);
    assert.equal(ack.tensorsLoaded, 2 * 2 * 3);
    const got = await engine.computeLogProbs({ pairs, returnEntropies: false });
    assert.equal(got.weightsVersion, 3);
    assert.equal(engine.info().weightsFormat, 'lora-adapter');
    const direct = await loadModel(served.dir);
    await loadLoraAdapter(direct, adapterDir);
    const want = await computeBatchLogProbs(direct, pairs);
    direct.dispose();
    got.logprobs.forEach((x, i) => assert.ok(Math.abs(x - want.logprobs[i]) <= 1e-5, `${x} vs ${want.logprobs[i]}`));
    assert.ok(got.logprobs.some((x, i) => Math.abs(x - baseLp.logprobs[i]) > 1e-3), 'the adapter changed the log-probs');
    // An adapter whose config promises a rank its tensors do not have is refused, and the served adapter stays.
    const wrongRank = JSON.stringify({ ...JSON.parse(cfg), r: 3 });
    await assert.rejects(engine.loadWeights(header(4, bytes, 'lora-adapter', wrongRank), bytes), isKind('invalid-argument', 'data'));
    const still = await engine.computeLogProbs({ pairs, returnEntropies: false });
    assert.deepEqual(still.logprobs, got.logprobs);
    engine.close();
  });

  test('the swap waits for running sequences: each completion reports the one version that produced it', async () => {
    const engine = new GenerationEngine(served, limits);
    const long: GenerationRequest = { prompts: [[10, 11]], sampling: { maxNewTokens: 30, stopTokenIds: [], seed: 1 } };
    const running = collect(engine.submit(long));
    await new Promise((r) => setImmediate(r));
    const bytes = await readFile(join(otherDir, 'model.safetensors'));
    const loading = engine.loadWeights(header(1, bytes), bytes);
    await new Promise((r) => setImmediate(r));
    const later = collect(engine.submit(long)); // queued behind the swap
    const [first, ack, second] = await Promise.all([running, loading, later]);
    assert.equal(ack.version, 1);
    assert.equal(first[0].weightsVersion, 0);
    assert.equal(first[0].tokenIds.length, 30);
    assert.equal(second[0].weightsVersion, 1);
    engine.close();
  });
});
