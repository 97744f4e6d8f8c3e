import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SamplerPool } from './sampler-pool';
import { startFake, type Fake } from './fake-sampler';
import { promptSeed } from './rollout-types';

// Fake PolicySampler replicas in this process (fake-sampler.ts).
const prompts = (k: number) => Array.from({ length: k }, (_, i) => ({ id: `p${i}`, tokenIds: [5, 6 + i] }));
const sampling = { topK: 0, stop: [], stopTokenIds: [], temperature: 1, maxNewTokens: 4 };

describe('SamplerPool', { timeout: 60_000 }, () => {
  const fakes: Fake[] = [];
  before(async () => {
    fakes.push(await startFake('ok'), await startFake('ok'), await startFake('fail-mid-stream'), await startFake('short-stream'), await startFake('hang'));
  });
  after(async () => {
    await Promise.all(fakes.map((f) => f.server.shutdown()));
  });
  const reset = () => fakes.forEach((f) => ((f.requests = []), (f.versionAtRequest = [])));

  test('spreads prompts over every replica and returns each completion once, in prompt then sample order', async () => {
    reset();
    const [a, b] = fakes;
    const pool = new SamplerPool([a.address, b.address], { maxInFlightPerSampler: 2 });
    const res = await pool.generate(prompts(6), { n: 3, sampling, seed: 11 });
    pool.close();
    assert.equal(res.rollouts.length, 18);
    assert.deepEqual(
      res.rollouts.map((r) => `${r.promptId}/${r.sampleIndex}`),
      prompts(6).flatMap((p) => [0, 1, 2].map((s) => `${p.id}/${s}`)),
    );
    assert.ok(a.requests.length > 0 && b.requests.length > 0, `requests: ${a.requests.length}, ${b.requests.length}`);
    assert.equal(a.requests.length + b.requests.length, 6, 'one request per prompt, none repeated');
    assert.equal(res.perSampler[a.address] + res.perSampler[b.address], 18);
    assert.equal(res.perSampler[a.address], a.requests.length * 3);
    assert.equal(res.retries, 0);
    // Each prompt samples with the seed derived from (seed, id), whichever replica ran it.
    for (const r of res.rollouts) assert.equal(r.tokenIds[0], 3 + (promptSeed(11, r.promptId) % 50));
    // The request carries the prompt's tokens, log-probs on.
    for (const req of [...a.requests, ...b.requests]) assert.equal(req.sampling!.logprobs, true);
  });

  test('a stream that fails mid-way is discarded and its prompt re-issued on another replica: nothing lost, nothing twice', async () => {
    reset();
    const [good, , failing] = fakes;
    const retries: string[] = [];
    const pool = new SamplerPool([failing.address, good.address], { benchMs: 60_000, onRetry: (e) => retries.push(e.promptId) });
    const res = await pool.generate(prompts(4), { n: 2, sampling, seed: 3 });
    pool.close();
    assert.equal(res.rollouts.length, 8);
    assert.equal(new Set(res.rollouts.map((r) => `${r.promptId}/${r.sampleIndex}`)).size, 8);
    // The failing replica sent sample 0 of each prompt it got before failing: none of those is kept.
    assert.ok(failing.requests.length >= 1);
    assert.ok(res.rollouts.every((r) => r.sampler === good.address));
    assert.equal(res.retries, failing.requests.length);
    assert.deepEqual(retries.sort(), failing.requests.map((r) => r.requestId).sort());
    // A re-issued prompt keeps its seed.
    for (const req of failing.requests) assert.ok(good.requests.some((g) => g.requestId === req.requestId && g.sampling!.seed === req.sampling!.seed));
  });

  test('a stream that ends short, and a replica that hangs past the deadline, are retried elsewhere', async () => {
    reset();
    const [good, , , short, hang] = fakes;
    const pool = new SamplerPool([short.address, hang.address, good.address], { requestTimeoutMs: 800, benchMs: 60_000 });
    const res = await pool.generate(prompts(3), { n: 2, sampling, seed: 5 });
    pool.close();
    assert.equal(res.rollouts.length, 6);
    assert.ok(res.rollouts.every((r) => r.sampler === good.address));
    assert.ok(short.requests.length >= 1 && hang.requests.length >= 1, `short ${short.requests.length}, hang ${hang.requests.length}`);
    assert.equal(res.retries, short.requests.length + hang.requests.length);
  });

  test('Generate deadlines follow the observed latency: a hung replica costs a few times that, not the 60 s cap', async () => {
    reset();
    const [good, , , , hang] = fakes;
    const pool = new SamplerPool([good.address, hang.address], { requestTimeoutMs: 60_000, minRequestTimeoutMs: 300, benchMs: 60_000 });
    const units = 2 * sampling.maxNewTokens;
    assert.equal(pool.generateBudget.deadlineMs(units), 4 * 250 * units, 'before any answer: 4 x the initial 250 ms per requested token');
    await pool.generate([{ id: 'warm', tokenIds: [5] }], { n: 2, sampling, seed: 1 }); // replica 0 (good) answers: latency observed
    assert.ok(pool.generateBudget.observed);
    const deadline = pool.generateBudget.deadlineMs(units);
    assert.ok(deadline >= 300 && deadline < 2_000, `deadline after an observed answer: ${deadline} ms`);
    const began = Date.now();
    const res = await pool.generate(prompts(4), { n: 2, sampling, seed: 2 });
    const took = Date.now() - began;
    pool.close();
    assert.ok(hang.requests.length >= 1, 'the hung replica was tried');
    assert.equal(res.rollouts.length, 8);
    assert.ok(res.rollouts.every((r) => r.sampler === good.address));
    assert.equal(res.retries, hang.requests.length);
    assert.ok(took < deadline + 2_000, `the step took ${took} ms with a ${deadline} ms deadline (cap 60 000)`);
  });

  test('a frozen replica: its upload times out on a deadline scaled to the bytes, later uploads do not wait for it, and it gets no prompts without the newest weights', async () => {
    reset();
    const [good] = fakes;
    const frozen = await startFake('frozen');
    const pool = new SamplerPool([good.address, frozen.address], { loadWeightsTimeoutMs: 60_000, minLoadWeightsTimeoutMs: 300, requestTimeoutMs: 60_000, benchMs: 60_000 });
    const bytes = new Uint8Array(4000).map((_, i) => i % 251);
    try {
      let began = Date.now();
      const first = await pool.pushWeights(bytes, 1);
      const firstMs = Date.now() - began;
      assert.deepEqual(first.acked, [good.address]);
      assert.match(first.failed.find((f) => f.sampler === frozen.address)!.error, /DEADLINE_EXCEEDED.*\(deadline 300 ms for 4000 bytes\)/);
      assert.ok(firstMs < 2_500, `the first push waited ${firstMs} ms for the frozen replica (cap 60 000)`);
      began = Date.now();
      const second = await pool.pushWeights(bytes, 2);
      assert.deepEqual(second.acked, [good.address]);
      assert.deepEqual(second.background, [frozen.address]);
      assert.ok(Date.now() - began < 250, `the second push waited ${Date.now() - began} ms; a benched replica is not waited for`);
      const res = await pool.generate(prompts(4), { n: 2, sampling, seed: 3 });
      assert.equal(res.rollouts.length, 8);
      assert.equal(frozen.requests.length, 0, 'no prompt went to the replica without the newest weights');
      assert.equal(res.retries, 0);
    } finally {
      pool.close();
      await frozen.server.shutdown();
    }
  });

  test('a prompt that fails on every attempt fails the call, naming the prompt and the errors', async () => {
    reset();
    const [, , failing] = fakes;
    const pool = new SamplerPool([failing.address], { maxAttemptsPerPrompt: 2, benchMs: 10 });
    await assert.rejects(pool.generate(prompts(1), { n: 2, sampling, seed: 1 }), /^Error: prompt p0: no complete set of 2 completions after 2 attempt\(s\): 127\.0\.0\.1:\d+: UNAVAILABLE: replica going away/);
    pool.close();
  });

  test('rejects duplicate prompt ids and a bad n before sending anything', async () => {
    reset();
    const pool = new SamplerPool([fakes[0].address]);
    await assert.rejects(pool.generate([{ id: 'x', tokenIds: [1] }, { id: 'x', tokenIds: [2] }], { n: 1, sampling, seed: 1 }), /prompts: id "x" appears twice/);
    await assert.rejects(pool.generate(prompts(1), { n: 0, sampling, seed: 1 }), /n: got 0, expected an integer >= 1/);
    pool.close();
    assert.equal(fakes[0].requests.length, 0);
    assert.throws(() => new SamplerPool([]), /sampler_addresses: empty/);
    assert.throws(() => new SamplerPool(['a:1', 'a:1']), /sampler_addresses\[1\]: a:1 is listed twice/);
  });

  test('pushWeights reaches every replica, checks the acknowledged version, and reports the ones that missed it', async () => {
    const [a, b] = fakes;
    const wrong = await startFake('wrong-ack');
    const pool = new SamplerPool([a.address, b.address, wrong.address, '127.0.0.1:1'], { loadWeightsTimeoutMs: 3_000 });
    const bytes = new Uint8Array(3000).map((_, i) => i % 251);
    const res = await pool.pushWeights(bytes, 7);
    pool.close();
    await wrong.server.shutdown();
    assert.deepEqual(res.acked.sort(), [a.address, b.address].sort());
    assert.equal(a.version, 7);
    assert.equal(b.version, 7);
    assert.deepEqual(res.failed.map((f) => f.sampler).sort(), [wrong.address, '127.0.0.1:1'].sort());
    assert.match(res.failed.find((f) => f.sampler === wrong.address)!.error, /acknowledged version 6, expected 7/);
    const none = new SamplerPool(['127.0.0.1:1'], { loadWeightsTimeoutMs: 2_000 });
    await assert.rejects(none.pushWeights(bytes, 8), /LoadWeights version 8: no sampler acknowledged it/);
    none.close();
  });

  test('promptSeed is a deterministic 31-bit function of (seed, id)', () => {
    assert.equal(promptSeed(1, 'a'), promptSeed(1, 'a'));
    assert.notEqual(promptSeed(1, 'a'), promptSeed(2, 'a'));
    assert.notEqual(promptSeed(1, 'a'), promptSeed(1, 'b'));
    for (const id of ['a', 'p0', 's1-p2-l9']) {
      const s = promptSeed(123, id);
      assert.ok(Number.isInteger(s) && s >= 0 && s < 2 ** 31);
    }
  });
});
