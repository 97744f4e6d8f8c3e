import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WeightsChunk, WeightsFormat } from './gen/posttrain/v1/policy_sampler';
import { WeightsAllocationError, WeightsUploadError, weightsChunks } from './weights-upload';
import { WeightsSpool, type WeightsSpoolOptions } from './weights-spool';

function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 13 + 5) & 0xff;
  return out;
}

async function spoolOf(bytes: Uint8Array, options: Omit<WeightsSpoolOptions, 'dir'>, corrupt?: number) {
  const dir = await mkdtemp(join(tmpdir(), 'posttrain-spool-'));
  const spool = new WeightsSpool({ ...options, dir });
  const chunks = [...weightsChunks(bytes, { version: 1, format: WeightsFormat.SAFETENSORS_FULL }, 1000)].map((c) => WeightsChunk.decode(WeightsChunk.encode(c).finish()));
  if (corrupt !== undefined) {
    const d = chunks[1 + Math.floor(corrupt / 1000)].chunk;
    if (d?.$case === 'data') d.value.data[corrupt % 1000] ^= 1;
  }
  return { dir, spool, chunks };
}

describe('WeightsSpool', () => {
  test('at most memoryBytes: assembled in memory, no file', async () => {
    const bytes = pattern(2500);
    const { dir, spool, chunks } = await spoolOf(bytes, { maxBytes: 10_000, memoryBytes: 2500 });
    for (const c of chunks) await spool.push(c);
    const done = await spool.finish();
    assert.equal(done.path, undefined);
    assert.deepEqual(new Uint8Array(done.bytes!), bytes);
    assert.deepEqual(await readdir(dir), []);
    await spool.dispose();
  });

  test('above memoryBytes: written to a file under dir as it arrives, verified, removed by dispose', async () => {
    const bytes = pattern(2500);
    const { dir, spool, chunks } = await spoolOf(bytes, { maxBytes: 10_000, memoryBytes: 100 });
    await spool.push(chunks[0]);
    assert.ok(spool.spoolPath?.startsWith(dir), 'the file is created at the header');
    for (const c of chunks.slice(1)) await spool.push(c);
    const done = await spool.finish();
    assert.equal(done.bytes, undefined);
    assert.equal(done.bytesReceived, 2500);
    assert.deepEqual(new Uint8Array(await readFile(done.path!)), bytes);
    await spool.dispose();
    await spool.dispose(); // twice is fine
    assert.deepEqual(await readdir(dir), []);
  });

  test('a corrupted byte fails the SHA-256 check at the end, and dispose removes the file', async () => {
    const { dir, spool, chunks } = await spoolOf(pattern(2500), { maxBytes: 10_000, memoryBytes: 0 }, 1234);
    for (const c of chunks) await spool.push(c);
    await assert.rejects(spool.finish(), (e: unknown) => e instanceof WeightsUploadError && e.field === 'header.sha256');
    assert.equal((await readdir(dir)).length, 1);
    await spool.dispose();
    assert.deepEqual(await readdir(dir), []);
  });

  test('a breach of the contract mid-stream is refused like WeightsAssembler refuses it, and the partial file goes', async () => {
    const { dir, spool, chunks } = await spoolOf(pattern(2500), { maxBytes: 10_000, memoryBytes: 0 });
    await spool.push(chunks[0]);
    await spool.push(chunks[1]);
    await assert.rejects(spool.push(chunks[3]), (e: unknown) => e instanceof WeightsUploadError && e.field === 'chunk[2].data.offset');
    await spool.dispose();
    assert.deepEqual(await readdir(dir), []);
  });

  test('over maxBytes: refused from the header, nothing allocated or created; more than the free disk: RESOURCE_EXHAUSTED (WeightsAllocationError)', async () => {
    const over = await spoolOf(pattern(2500), { maxBytes: 2499, memoryBytes: 0 });
    await assert.rejects(over.spool.push(over.chunks[0]), (e: unknown) => e instanceof WeightsUploadError && /got 2500, expected an integer in 1\.\.2499/.test(e.message));
    assert.deepEqual(await readdir(over.dir), []);
    const full = await spoolOf(pattern(2500), { maxBytes: 10_000, memoryBytes: 0, freeBytes: async () => 2000 });
    await assert.rejects(full.spool.push(full.chunks[0]), (e: unknown) => e instanceof WeightsAllocationError && /2500 bytes do not fit in the upload directory .* \(2000 bytes free\)/.test(e.message));
    assert.deepEqual(await readdir(full.dir), []);
  });
});
