import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WeightsChunk, WeightsFormat } from './gen/posttrain/v1/policy_sampler';
import { constants as bufferConstants } from 'node:buffer';
import { MAX_WEIGHTS_CHUNK_BYTES, WeightsAllocationError, WeightsAssembler, WeightsUploadError, sha256Hex, weightsChunks } from './weights-upload';

// FIPS 180-2 test vector: SHA-256("abc").
const ABC_SHA256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + 3) & 0xff;
  return out;
}

function rejects(fn: () => unknown, field: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WeightsUploadError, `expected WeightsUploadError, got ${String(e)}`);
    assert.equal(e.field, field);
    assert.match(e.message, message);
    return true;
  });
}

describe('weightsChunks', () => {
  test('header first with size and checksum, then contiguous views of at most chunkBytes', () => {
    const bytes = new TextEncoder().encode('abc');
    const chunks = [...weightsChunks(bytes, { version: 2, format: WeightsFormat.SAFETENSORS_FULL }, 2)];
    assert.equal(sha256Hex(bytes), ABC_SHA256);
    assert.deepEqual(chunks[0], {
      chunk: { $case: 'header', value: { version: 2, format: WeightsFormat.SAFETENSORS_FULL, totalBytes: 3, sha256: ABC_SHA256, adapterConfigJson: '', manifest: [] } },
    });
    const data = chunks.slice(1).map((c) => (c.chunk?.$case === 'data' ? c.chunk.value : assert.fail('expected data')));
    assert.deepEqual(data.map((d) => [d.offset, [...d.data]]), [[0, [97, 98]], [2, [99]]]);
    for (const d of data) assert.equal(d.data.buffer, bytes.buffer); // views, not copies
  });

  test('rejects a chunk size above the contract limit and empty input', () => {
    assert.throws(() => [...weightsChunks(pattern(4), { version: 1, format: WeightsFormat.SAFETENSORS_FULL }, MAX_WEIGHTS_CHUNK_BYTES + 1)], RangeError);
    assert.throws(() => [...weightsChunks(new Uint8Array(0), { version: 1, format: WeightsFormat.SAFETENSORS_FULL })], RangeError);
  });
});

describe('WeightsAssembler', () => {
  test('reassembles an upload that went through the wire encoding', () => {
    const bytes = pattern(2500);
    const asm = new WeightsAssembler(10_000);
    let n = 0;
    for (const c of weightsChunks(bytes, { version: 5, format: WeightsFormat.LORA_ADAPTER, adapterConfigJson: '{"r":8}' }, 1000)) {
      asm.push(WeightsChunk.decode(WeightsChunk.encode(c).finish()));
      n++;
    }
    assert.equal(n, 4); // header + 1000 + 1000 + 500
    assert.equal(asm.bytesReceived, 2500);
    const { header, bytes: out } = asm.finish();
    assert.equal(header.version, 5);
    assert.equal(header.adapterConfigJson, '{"r":8}');
    assert.deepEqual(new Uint8Array(out), bytes);
  });

  const header = (over: Partial<{ totalBytes: number; sha256: string }> = {}): WeightsChunk => ({
    chunk: { $case: 'header', value: { version: 1, format: WeightsFormat.SAFETENSORS_FULL, totalBytes: 3, sha256: ABC_SHA256, adapterConfigJson: '', manifest: [], ...over } },
  });
  const data = (offset: number, bytes: number[]): WeightsChunk => ({ chunk: { $case: 'data', value: { offset, data: Buffer.from(bytes) } } });

  test('a total_bytes above the bound is refused before any allocation; one within the bound but above what one buffer of this Node holds is a WeightsAllocationError, not a RangeError', (t) => {
    const max = bufferConstants.MAX_LENGTH;
    // 5 GiB with the old 8 GiB default bound: refused by the bound, nothing allocated.
    rejects(() => new WeightsAssembler(4 * 1024 ** 3).push(header({ totalBytes: 5 * 1024 ** 3 })), 'header.total_bytes', /got 5368709120, expected an integer in 1\.\.4294967296/);
    if (max >= Number.MAX_SAFE_INTEGER) return t.skip(`this Node's buffers hold up to ${max} bytes`);
    assert.throws(
      () => new WeightsAssembler(Number.MAX_SAFE_INTEGER).push(header({ totalBytes: max + 1 })),
      (e: unknown) => e instanceof WeightsAllocationError && new RegExp(`^header\\.total_bytes: ${max + 1} bytes is more than one buffer of this Node can hold \\(${max}\\)`).test(e.message),
    );
  });

  test('rejects every breach of the stream contract, naming the field', () => {
    rejects(() => new WeightsAssembler(100).push(data(0, [1])), 'chunk[0].data', /before the header/);
    rejects(() => new WeightsAssembler(100).push({}), 'chunk[0]', /empty message/);
    rejects(() => new WeightsAssembler(100).finish(), 'chunk', /without a header/);
    rejects(() => new WeightsAssembler(2).push(header()), 'header.total_bytes', /got 3, expected an integer in 1\.\.2/);
    rejects(() => new WeightsAssembler(100).push(header({ sha256: 'ABC' })), 'header.sha256', /64 lowercase hex/);

    const twice = new WeightsAssembler(100);
    twice.push(header());
    rejects(() => twice.push(header()), 'chunk[1].header', /second header/);

    const gap = new WeightsAssembler(100);
    gap.push(header());
    gap.push(data(0, [97]));
    rejects(() => gap.push(data(2, [99])), 'chunk[2].data.offset', /got 2, expected 1/);

    const over = new WeightsAssembler(100);
    over.push(header());
    rejects(() => over.push(data(0, [1, 2, 3, 4])), 'chunk[1].data.data', /0 \+ 4 bytes exceeds header\.total_bytes 3/);

    const empty = new WeightsAssembler(100);
    empty.push(header());
    rejects(() => empty.push(data(0, [])), 'chunk[1].data.data', /got 0 bytes/);

    const short = new WeightsAssembler(100);
    short.push(header());
    short.push(data(0, [97, 98]));
    rejects(() => short.finish(), 'header.total_bytes', /announced 3 bytes, the stream carried 2/);

    const corrupt = new WeightsAssembler(100);
    corrupt.push(header());
    corrupt.push(data(0, [97, 98, 100])); // "abd", not "abc"
    rejects(() => corrupt.finish(), 'header.sha256', new RegExp(`announced ${ABC_SHA256}, the received bytes hash to ${sha256Hex(new TextEncoder().encode('abd'))}`));

    const ok = new WeightsAssembler(100);
    ok.push(header());
    ok.push(data(0, [97, 98, 99]));
    assert.deepEqual([...ok.finish().bytes], [97, 98, 99]);
  });
});
