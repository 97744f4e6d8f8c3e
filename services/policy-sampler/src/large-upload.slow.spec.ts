import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicySamplerService, WeightsFormat, type WeightsChunk } from '@posttrain/proto';
import { createClient, PosttrainServer } from '@posttrain/rpc';
import { safetensorsFileTensors } from '@posttrain/safetensors';
import type { GenerationEngine, WeightsPayload, WeightsUpload } from '@posttrain/serving';
import { createLogger } from '@posttrain/telemetry';
import { createPolicySamplerHandlers, type PolicySamplerState } from './policy-sampler-handlers';

// A LoadWeights upload of more than 4 GiB (the most one Buffer of Node 20 holds, and a wasm32 heap) through the sampler's
// real handler over real gRPC on loopback: the synthetic safetensors file is generated on the fly, the receiver writes it
// to --upload-dir, hashes it as it arrives and reads it back tensor by tensor. The engine is a stand-in that records each
// tensor's shape and checksum (a model of this size does not fit the wasm backend); everything before it is the real path.
const MIB = 1 << 20;
const TENSORS = 32;
const ROWS = 135; // MiB per tensor: 32 x 135 MiB = 4320 MiB = 4.22 GiB
const names = Array.from({ length: TENSORS }, (_, t) => `layer.${String(t).padStart(2, '0')}.weight`);

function fileHeader(): Buffer {
  const entries = Object.fromEntries(names.map((n, t) => [n, { dtype: 'U8', shape: [ROWS, MIB], data_offsets: [t * ROWS * MIB, (t + 1) * ROWS * MIB] }]));
  let json = JSON.stringify(entries);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = Buffer.alloc(8 + json.length);
  out.writeBigUInt64LE(BigInt(json.length));
  out.write(json, 8);
  return out;
}
const HEADER = fileHeader();
const TOTAL = HEADER.byteLength + TENSORS * ROWS * MIB;

// One random MiB, stamped with (tensor, row) in its first 8 bytes so every row differs.
const BASE = Buffer.alloc(MIB);
for (let i = 0, x = 2463534242; i < MIB; i++) {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  BASE[i] = x & 0xff;
}
function row(t: number, r: number): Buffer {
  const out = Buffer.allocUnsafe(MIB);
  BASE.copy(out);
  out.writeUInt32LE(t, 0);
  out.writeUInt32LE(r, 4);
  return out;
}

/** The file's bytes in order: the safetensors header, then each tensor's rows (1 MiB each). */
function* pieces(): Generator<{ t: number; bytes: Buffer }> {
  yield { t: -1, bytes: HEADER };
  for (let t = 0; t < TENSORS; t++) for (let r = 0; r < ROWS; r++) yield { t, bytes: row(t, r) };
}

function* upload(sha256: string): Generator<WeightsChunk> {
  yield { chunk: { $case: 'header', value: { version: 1, format: WeightsFormat.SAFETENSORS_FULL, totalBytes: TOTAL, sha256, adapterConfigJson: '', manifest: [] } } };
  let offset = 0;
  for (const { bytes } of pieces()) {
    yield { chunk: { $case: 'data', value: { offset, data: bytes } } };
    offset += bytes.byteLength;
  }
}

describe('LoadWeights of more than 4 GiB', { timeout: 900_000 }, () => {
  const quiet = createLogger({ service: 'test', level: 'silent' });
  const server = new PosttrainServer({ name: 'policy-sampler', host: '127.0.0.1', port: 0, shutdownGraceMs: 100, log: quiet });
  const seen: { name: string; shape: number[]; sha256: string; bytes: number }[] = [];
  let loads = 0;
  const engine = {
    checkUploadHeader: () => undefined,
    loadWeights: async (_u: WeightsUpload, payload: WeightsPayload) => {
      loads++;
      assert.ok(!(payload instanceof Uint8Array), 'an upload over --upload-memory-bytes arrives as a file');
      for await (const { entry, bytes } of safetensorsFileTensors(payload.path)) seen.push({ name: entry.name, shape: entry.shape, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.byteLength });
      return { version: 1, duplicate: false, tensorsLoaded: seen.length };
    },
  };
  let uploadDir: string;
  let address: string;
  before(async () => {
    uploadDir = await mkdtemp(join(tmpdir(), 'posttrain-large-upload-'));
    const state: PolicySamplerState = { replicaId: 'r', maxNewTokens: 16, maxQueueDepth: 8, maxBatchSequences: 8, maxBatchTokens: 4096, maxRequestSequences: 8, maxUploadBytes: 8 * 1024 ** 3, uploadMemoryBytes: 256 * MIB, uploadDir, engine: engine as unknown as GenerationEngine };
    server.add('posttrain.v1.PolicySampler', PolicySamplerService, createPolicySamplerHandlers(state));
    address = (await server.start()).address;
    server.setServing(true);
  });
  after(() => server.shutdown());

  test('4.22 GiB in 32 tensors: verified, every tensor with its shape and content, peak RSS far below the upload (a corrupted byte is refused in weights-spool.spec.ts)', async () => {
    assert.ok(TOTAL > 4 * 1024 ** 3);
    // The sender's pass: the file's SHA-256 and each tensor's, without holding more than one row.
    const whole = createHash('sha256');
    const perTensor = names.map(() => createHash('sha256'));
    for (const { t, bytes } of pieces()) {
      whole.update(bytes);
      if (t >= 0) perTensor[t].update(bytes);
    }
    const sha256 = whole.digest('hex');
    const want = perTensor.map((h) => h.digest('hex'));

    const client = createClient(PolicySamplerService, [address], { maxAttempts: 1, deadlineMs: 600_000 });
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    const began = performance.now();
    const ack = await client.clientStream('loadWeights', upload(sha256));
    const seconds = (performance.now() - began) / 1000;
    clearInterval(sampler);
    assert.equal(ack.bytesReceived, TOTAL);
    assert.equal(ack.tensorsLoaded, TENSORS);
    assert.deepEqual(seen.map((s) => s.name), names);
    for (const [t, s] of seen.entries()) {
      assert.deepEqual(s.shape, [ROWS, MIB], s.name);
      assert.equal(s.sha256, want[t], `${s.name}: content checksum`);
    }
    assert.deepEqual(await readdir(uploadDir), [], 'the temporary file is removed after the load');
    const largest = Math.max(...seen.map((s) => s.bytes));
    console.log(`# ${(TOTAL / 1024 ** 3).toFixed(2)} GiB in ${seconds.toFixed(1)} s (${(TOTAL / MIB / seconds).toFixed(0)} MiB/s); RSS ${(rssBefore / MIB).toFixed(0)} MiB before, peak ${(peakRss / MIB).toFixed(0)} MiB; largest tensor ${(largest / MIB).toFixed(0)} MiB`);
    assert.ok(peakRss - rssBefore < TOTAL / 4, `peak RSS grew by ${((peakRss - rssBefore) / MIB).toFixed(0)} MiB for a ${(TOTAL / MIB).toFixed(0)} MiB upload`);

    assert.equal(loads, 1);
    client.close();
  });
});
