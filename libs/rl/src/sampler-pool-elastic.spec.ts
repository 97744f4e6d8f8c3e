import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFake, type Fake } from './fake-sampler';
import { fileAddressSource } from './sampler-addresses';
import { SamplerPool } from './sampler-pool';
import type { SamplerPoolEvent } from './rollout-types';

// The pool with replicas joining, leaving and restarting, over fake replicas
// on loopback (fake-sampler.ts).
const prompts = (k: number, tag = 'p') => Array.from({ length: k }, (_, i) => ({ id: `${tag}${i}`, tokenIds: [5, 6 + i] }));
const sampling = { topK: 0, stop: [], stopTokenIds: [], temperature: 1, maxNewTokens: 4 };
const bytes = new Uint8Array(2000).map((_, i) => i % 251);

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every rollout of the call once: prompts x n distinct (prompt, sample) pairs. */
function assertOnce(rollouts: { promptId: string; sampleIndex: number }[], count: number, n: number): void {
  assert.equal(rollouts.length, count * n);
  assert.equal(new Set(rollouts.map((r) => `${r.promptId}/${r.sampleIndex}`)).size, count * n);
}

describe('SamplerPool, elastic', { timeout: 60_000 }, () => {
  const fakes: Fake[] = [];
  const fresh = async (mode: Parameters<typeof startFake>[0] = 'ok') => {
    const fake = await startFake(mode);
    fakes.push(fake);
    return fake;
  };
  before(async () => {
    await fresh();
  });
  after(async () => {
    await Promise.all(fakes.map((f) => f.server.shutdown()));
  });

  test('a replica that joins after a push gets the pushed weights before any prompt, then takes its share', async () => {
    const [a, b] = [await fresh(), await fresh()];
    const events: SamplerPoolEvent[] = [];
    const pool = new SamplerPool([a.address], { onEvent: (e) => events.push(e) });
    try {
      await pool.pushWeights(bytes, 3);
      pool.setAddresses([a.address, b.address]);
      assert.deepEqual(pool.addresses, [a.address, b.address]);
      // Prompts issued at once: the newcomer is still being synced for some of them.
      const first = await pool.generate(prompts(8), { n: 2, sampling, seed: 1 });
      assertOnce(first.rollouts, 8, 2);
      await until('b is synced', () => pool.stats().ready === 2);
      const second = await pool.generate(prompts(8, 'q'), { n: 2, sampling, seed: 2 });
      assertOnce(second.rollouts, 8, 2);
      assert.ok(b.requests.length > 0, 'the newcomer got prompts');
      assert.ok(b.versionAtRequest.every((v) => v === 3), `versions when b's requests arrived: ${b.versionAtRequest.join(' ')}`);
      assert.ok([...first.rollouts, ...second.rollouts].every((r) => r.weightsVersion === 3), 'no rollout of older weights');
      const stats = pool.stats();
      assert.deepEqual([stats.size, stats.ready, stats.resyncs, stats.added, stats.removed, stats.restarts], [2, 2, 1, 1, 0, 0]);
      assert.deepEqual(
        stats.replicas.map((r) => [r.index, r.weightsVersion, r.acceptedLast]),
        [
          [0, 3, second.perSampler[a.address]],
          [1, 3, second.perSampler[b.address]],
        ],
      );
      assert.deepEqual(
        events.map((e) => `${e.kind} ${e.sampler === b.address ? 'b' : e.sampler}`),
        ['added b', 'resynced b'],
      );
    } finally {
      pool.close();
    }
  });

  test('a replica removed with prompts in flight: they are re-issued elsewhere, not counted as failed attempts', async () => {
    const good = await fresh();
    const hang = await fresh('hang');
    const pool = new SamplerPool([hang.address, good.address], { maxAttemptsPerPrompt: 1, requestTimeoutMs: 60_000 });
    try {
      const call = pool.generate(prompts(6), { n: 2, sampling, seed: 3 });
      await until('the hung replica holds prompts', () => hang.requests.length > 0);
      pool.setAddresses([good.address]);
      const res = await call;
      assertOnce(res.rollouts, 6, 2);
      assert.ok(res.rollouts.every((r) => r.sampler === good.address));
      assert.equal(res.retries, hang.requests.length);
      assert.deepEqual(Object.keys(res.perSampler), [good.address]);
      assert.deepEqual([pool.stats().size, pool.stats().removed], [1, 1]);
    } finally {
      pool.close();
    }
  });

  test('a replica that restarted is refused by min_weights_version, its prompts go elsewhere, and it is re-synced and serves again', async () => {
    const [a, b] = [await fresh(), await fresh()];
    const pool = new SamplerPool([a.address, b.address]);
    try {
      await pool.pushWeights(bytes, 5);
      b.restart();
      const uploadsBefore = b.uploads;
      const res = await pool.generate(prompts(8), { n: 2, sampling, seed: 4 });
      assertOnce(res.rollouts, 8, 2);
      assert.ok(res.rollouts.every((r) => r.weightsVersion === 5), 'no rollout of the restarted replica\'s initial weights');
      assert.ok(b.versionAtRequest.includes(0), 'b was asked while it held version 0, and refused');
      await until('b is re-synced', () => b.version === 5 && pool.stats().ready === 2);
      assert.equal(b.uploads, uploadsBefore + 1, 'one re-upload');
      const stats = pool.stats();
      assert.deepEqual([stats.restarts, stats.resyncs, stats.size], [1, 1, 2]);
      b.requests = [];
      b.versionAtRequest = [];
      const again = await pool.generate(prompts(8, 'q'), { n: 2, sampling, seed: 5 });
      assertOnce(again.rollouts, 8, 2);
      assert.ok(again.perSampler[b.address] > 0, 'b serves again');
      assert.ok(b.versionAtRequest.every((v) => v === 5));
    } finally {
      pool.close();
    }
  });

  test('following a sampler file: an added line joins (synced), a restart is noticed by GetInfo between calls, a removed line leaves', async () => {
    const [a, b] = [await fresh(), await fresh()];
    const dir = await mkdtemp(join(tmpdir(), 'posttrain-pool-'));
    const path = join(dir, 'samplers');
    await writeFile(path, `${a.address}\n`);
    const events: string[] = [];
    const pool = await SamplerPool.open(fileAddressSource(path, 100), { onEvent: (e) => events.push(e.kind) });
    try {
      await pool.pushWeights(bytes, 2);
      await writeFile(path, `# two now\n${a.address}\n${b.address}\n`);
      await until('b joined and holds version 2', () => pool.stats().ready === 2 && b.version === 2);
      a.restart();
      await until('the probe noticed a restarted and re-synced it', () => pool.stats().restarts === 1 && a.version === 2 && pool.stats().ready === 2);
      assert.equal(a.requests.length, 0, 'noticed without any Generate');
      await writeFile(path, `${b.address}\n`);
      await until('a left', () => pool.stats().size === 1);
      const res = await pool.generate(prompts(4), { n: 2, sampling, seed: 6 });
      assertOnce(res.rollouts, 4, 2);
      assert.ok(res.rollouts.every((r) => r.sampler === b.address));
      await writeFile(path, 'not an address\n');
      await until('the bad file was reported', () => events.includes('source-error'));
      assert.deepEqual(pool.addresses, [b.address], 'a bad file leaves the pool as it is');
      const stats = pool.stats();
      assert.deepEqual([stats.added, stats.removed, stats.resyncs, stats.restarts], [1, 1, 2, 1]);
      assert.deepEqual(stats.replicas.map((r) => r.index), [1], 'an address keeps its number');
    } finally {
      pool.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('with every replica still being synced, a call waits for the sync rather than sampling older weights', async () => {
    const [a, b] = [await fresh(), await fresh()];
    const pool = new SamplerPool([a.address]);
    try {
      await pool.pushWeights(bytes, 4);
      pool.setAddresses([b.address]); // a leaves, b joins at version 0
      const res = await pool.generate(prompts(3), { n: 2, sampling, seed: 7 });
      assertOnce(res.rollouts, 3, 2);
      assert.ok(res.rollouts.every((r) => r.sampler === b.address && r.weightsVersion === 4));
    } finally {
      pool.close();
    }
  });
});
