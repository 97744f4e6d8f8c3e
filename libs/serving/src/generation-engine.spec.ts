import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { forwardLogits, sampleToken } from '@posttrain/model';
import { Rng } from '@posttrain/random';
import { Registry } from 'prom-client';
import { GenerationEngine } from './generation-engine';
import type { GeneratedCompletion, GenerationRequest } from './generation-request';
import { tokenizePrompt } from './prompt-tokens';
import { loadServedModel, type ServedModel } from './served-model';
import { ServingError } from './serving-error';
import { TINY_EOS, useCpuBackend, writeTinyModelDir } from './test-support';

let served: ServedModel;
const limits = { maxBatchSequences: 16, maxBatchTokens: 4096, maxQueueDepth: 8, maxNewTokens: 24 };

before(async () => {
  await useCpuBackend();
  served = await loadServedModel(await writeTinyModelDir(7));
});
after(() => served.model.dispose());

async function collect(stream: AsyncIterable<GeneratedCompletion[]>): Promise<GeneratedCompletion[]> {
  const out: GeneratedCompletion[] = [];
  for await (const batch of stream) out.push(...batch);
  return out.sort((a, b) => a.promptIndex - b.promptIndex || a.sampleIndex - b.sampleIndex);
}

const text = (value: string) => tokenizePrompt(served, { text: value }, 'prompts[0]');

/**
 * Plain reference sampler: recomputes the whole sequence every step (no cache,
 * no batching) and draws with the same per-sequence stream the engine uses,
 * Rng(seed).fork(`prompt/sample`).
 */
function referenceSample(prompt: number[], seed: number, label: string, o: { temperature: number; topK: number; topP: number; maxNew: number }): { tokens: number[]; logProbs: number[] } {
  const rng = new Rng(seed).fork(label);
  const seq = [...prompt];
  const tokens: number[] = [];
  const logProbs: number[] = [];
  for (let t = 0; t < o.maxNew; t++) {
    const logits = forwardLogits(served.model, { inputIds: [seq] });
    const all = logits.dataSync() as Float32Array;
    const V = logits.shape[2];
    const last = all.slice((seq.length - 1) * V, seq.length * V);
    logits.dispose();
    const { token, logProb } = sampleToken(last, o, rng);
    tokens.push(token);
    logProbs.push(logProb);
    seq.push(token);
    if (token === TINY_EOS) break;
  }
  return { tokens, logProbs };
}

describe('GenerationEngine', () => {
  test('each sequence matches a plain no-cache, unbatched sampler with its own stream (tokens exact, log-probs within 1e-4)', async () => {
    const engine = new GenerationEngine(served, limits);
    const prompts = [[10, 20, 30, 40, 50], [60], [70, 71, 72]];
    const sampling = { temperature: 0.9, topK: 20, topP: 0.95, maxNewTokens: 8, seed: 42, logprobs: true };
    const got = await collect(engine.submit({ prompts, samplesPerPrompt: 2, sampling }));
    assert.equal(got.length, 6);
    for (const c of got) {
      const ref = referenceSample(prompts[c.promptIndex], 42, `${c.promptIndex}/${c.sampleIndex}`, { temperature: 0.9, topK: 20, topP: 0.95, maxNew: 8 });
      assert.deepEqual(c.tokenIds, ref.tokens, `prompt ${c.promptIndex} sample ${c.sampleIndex}`);
      c.logprobs.forEach((lp, i) => assert.ok(Math.abs(lp - ref.logProbs[i]) <= 1e-4, `logprob ${i}: ${lp} vs ${ref.logProbs[i]}`));
      assert.deepEqual(c.promptTokenIds, prompts[c.promptIndex]);
      assert.equal(c.finishReason, c.tokenIds.at(-1) === TINY_EOS ? 'stop' : 'length');
      assert.equal(c.weightsVersion, 0);
    }
    // the n samples of a prompt use different streams
    assert.notDeepEqual(got[0].tokenIds, got[1].tokenIds);
    engine.close();
  });

  test('the same seed gives the same completions whether a request runs alone or batched with others', async () => {
    const engine = new GenerationEngine(served, limits);
    const req: GenerationRequest = { prompts: [[5, 6, 7, 8]], samplesPerPrompt: 3, sampling: { temperature: 1, maxNewTokens: 10, seed: 9, logprobs: true } };
    const alone = await collect(engine.submit(req));
    const others = [1, 2, 3].map((k) => collect(engine.submit({ prompts: [[11 + k, 12, 13, 14, 15, 16, 17, 18, 19]], samplesPerPrompt: 2, sampling: { temperature: 1.2, maxNewTokens: 6 + k, seed: k } })));
    const batched = await collect(engine.submit(req));
    await Promise.all(others);
    // Joining a running batch mid-way (cache merge with different key lengths, then rows retiring around it).
    const early = collect(engine.submit({ prompts: [[21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31]], samplesPerPrompt: 2, sampling: { maxNewTokens: 12, stopTokenIds: [], seed: 5 } }));
    for (let k = 0; k < 4; k++) await new Promise((r) => setImmediate(r));
    assert.ok(engine.info().stats.runningSequences > 0, 'the early request is running when the next one joins');
    const joined = await collect(engine.submit(req));
    await early;
    assert.deepEqual(joined.map((c) => c.tokenIds), alone.map((c) => c.tokenIds));
    assert.deepEqual(batched.map((c) => c.tokenIds), alone.map((c) => c.tokenIds));
    batched.forEach((c, i) => c.logprobs.forEach((lp, j) => assert.ok(Math.abs(lp - alone[i].logprobs[j]) <= 1e-5)));
    const info = engine.info();
    assert.ok(info.stats.maxBatchSize > 1, `batch sizes reached ${info.stats.maxBatchSize}`);
    assert.equal(info.stats.completionsTotal, 3 + 6 + 3 + 2 + 3);
    engine.close();
  });

  test('stop strings cut the text, stop token ids end the completion and keep the token, max_new_tokens gives LENGTH', async () => {
    const engine = new GenerationEngine(served, limits);
    const tok = served.tokenizer!;
    const base = await collect(engine.submit({ prompts: [text('ab')], sampling: { temperature: 0, maxNewTokens: 12 } }));
    const greedy = base[0];
    assert.equal(greedy.text, tok.decode(greedy.tokenIds, { skipSpecialTokens: true }));
    assert.ok(greedy.tokenIds.length >= 3, 'greedy completion long enough to cut');
    // A stop string made of the 2nd and 3rd generated characters: the text stops right before it.
    const third = tok.decode(greedy.tokenIds.slice(1, 3), { skipSpecialTokens: true });
    const cut = await collect(engine.submit({ prompts: [text('ab')], sampling: { temperature: 0, maxNewTokens: 12, stopStrings: ['@@never@@', third] } }));
    const expectedText = greedy.text.slice(0, greedy.text.indexOf(third));
    assert.equal(cut[0].text, expectedText);
    assert.equal(cut[0].stopString, third);
    assert.equal(cut[0].finishReason, 'stop');
    // A stop token id equal to the greedy 2nd token: two tokens, the stop token included.
    const byId = await collect(engine.submit({ prompts: [text('ab')], sampling: { temperature: 0, maxNewTokens: 12, stopTokenIds: [greedy.tokenIds[1]], logprobs: true } }));
    const firstHit = greedy.tokenIds.indexOf(greedy.tokenIds[1]);
    assert.deepEqual(byId[0].tokenIds, greedy.tokenIds.slice(0, firstHit + 1));
    assert.equal(byId[0].logprobs.length, byId[0].tokenIds.length);
    assert.equal(byId[0].finishReason, 'stop');
    const short = await collect(engine.submit({ prompts: [[40, 41]], sampling: { temperature: 0, maxNewTokens: 1, stopTokenIds: [] } }));
    assert.equal(short[0].tokenIds.length, 1);
    assert.equal(short[0].logprobs.length, 0, 'no log-probs unless asked');
    engine.close();
  });

  test('chat prompts go through the chat template', async () => {
    const engine = new GenerationEngine(served, limits);
    const messages = [{ role: 'user', content: '2+2?' }];
    const [c] = await collect(engine.submit({ prompts: [tokenizePrompt(served, { messages }, 'prompts[0]')], sampling: { temperature: 0, maxNewTokens: 2 } }));
    assert.deepEqual(c.promptTokenIds, served.tokenizer!.encode('<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n', { addSpecialTokens: false }));
    engine.close();
  });

  test('a full queue answers resource-exhausted; a cancelled request leaves the batch', async () => {
    const engine = new GenerationEngine(served, { ...limits, maxBatchSequences: 1, maxQueueDepth: 1, maxNewTokens: 64 });
    const long = { temperature: 1, maxNewTokens: 64, stopTokenIds: [], seed: 1 };
    const noEos = (seed: number): GenerationRequest => ({ prompts: [[30, 31]], sampling: { ...long, seed } });
    const ac = new AbortController();
    const first = collect(engine.submit(noEos(1), ac.signal)).catch((e: Error) => e);
    await new Promise((r) => setImmediate(r)); // the scheduler admits the first request
    const second = collect(engine.submit(noEos(2))).catch((e: Error) => e);
    assert.equal(engine.info().queueDepth, 1);
    assert.throws(() => engine.submit(noEos(3)), (e: unknown) => e instanceof ServingError && e.kind === 'resource-exhausted');
    ac.abort();
    const r1 = await first;
    assert.ok(r1 instanceof ServingError && r1.kind === 'cancelled');
    const r2 = await second;
    assert.ok(Array.isArray(r2) && r2.length === 1, 'the queued request runs once the cancelled one is dropped');
    engine.close();
  });

  test('bad requests are invalid-argument naming the field', () => {
    const engine = new GenerationEngine(served, limits);
    const cases: [GenerationRequest, string][] = [
      [{ prompts: [] }, 'prompts'],
      [{ prompts: [[1, 500]] }, 'prompts[0].token_ids.ids[1]'],
      [{ prompts: [[1]], sampling: { temperature: -1 } }, 'sampling.temperature'],
      [{ prompts: [[1]], sampling: { topP: 0 } }, 'sampling.top_p'],
      [{ prompts: [[1]], sampling: { maxNewTokens: 1000 } }, 'sampling.max_new_tokens'],
      [{ prompts: [[1]], sampling: { stopTokenIds: [101] } }, 'sampling.stop_token_ids[0]'],
      [{ prompts: [new Array(96).fill(5)] }, 'prompts[0]'],
    ];
    for (const [partial, field] of cases) {
      assert.throws(() => engine.submit(partial), (e: unknown) => e instanceof ServingError && e.kind === 'invalid-argument' && e.field === field, field);
    }
    assert.throws(() => engine.submit({ prompts: [[1]], minWeightsVersion: 3 }), (e: unknown) => e instanceof ServingError && e.kind === 'failed-precondition');
    engine.close();
  });

  test('Prometheus metrics show batch sizes; no tensors leak across a run', async () => {
    const registry = new Registry();
    const engine = new GenerationEngine(served, { ...limits, registry });
    const before = tf.memory().numTensors;
    await Promise.all([1, 2, 3, 4].map((k) => collect(engine.submit({ prompts: [[k, k + 1, k + 2]], sampling: { maxNewTokens: 5, stopTokenIds: [], seed: k } }))));
    assert.equal(tf.memory().numTensors, before);
    const text = await registry.metrics();
    const m = /posttrain_sampler_batch_size_sum (\d+)/.exec(text);
    const count = /posttrain_sampler_batch_size_count (\d+)/.exec(text);
    assert.ok(m && count, text);
    // 4 sequences x (up to) 5 tokens; mean batch > 1 because they were batched
    assert.ok(Number(m[1]) / Number(count[1]) > 1, `mean batch ${Number(m[1]) / Number(count[1])}`);
    assert.match(text, /posttrain_sampler_generated_tokens_total 20/);
    engine.close();
  });
});
