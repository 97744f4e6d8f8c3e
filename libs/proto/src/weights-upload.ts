// Both ends of PolicySampler.LoadWeights: split a weights file into the
// header + ordered data chunks the contract prescribes, and put them back
// together with every rule of the contract checked (header first, contiguous
// offsets, chunk size, exact total, SHA-256).
import { constants as bufferConstants } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import type { WeightsChunk, WeightsData, WeightsHeader } from './gen/posttrain/v1/policy_sampler';

/** Default data bytes per chunk: 1 MiB, far below gRPC's default 4 MiB message limit. */
export const WEIGHTS_CHUNK_BYTES = 1 << 20;
/** Most data bytes one chunk may carry (the contract's limit, see WeightsData.data). */
export const MAX_WEIGHTS_CHUNK_BYTES = 2 << 20;

/** Why an upload was rejected; `field` is the proto path of the offending field. */
export class WeightsUploadError extends Error {
  override readonly name = 'WeightsUploadError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/**
 * An upload that fits the caller's bound but not this process: larger than
 * the largest Buffer this Node can hold, or more memory than it can get.
 * The sampler answers RESOURCE_EXHAUSTED, not INTERNAL.
 */
export class WeightsAllocationError extends Error {
  override readonly name = 'WeightsAllocationError';
}

/** Lowercase hex SHA-256 of the bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The messages of one LoadWeights stream for `bytes`: a header (total_bytes
 * and sha256 filled in from the bytes) followed by data chunks of
 * `chunkBytes` each (the last one shorter). Data chunks are views over
 * `bytes`, not copies.
 *
 * @example for (const chunk of weightsChunks(file, { version: 3, format: WeightsFormat.SAFETENSORS_FULL })) stream.write(chunk);
 */
export function* weightsChunks(
  bytes: Uint8Array,
  header: Omit<WeightsHeader, 'totalBytes' | 'sha256' | 'adapterConfigJson' | 'manifest'> & Partial<Pick<WeightsHeader, 'adapterConfigJson' | 'manifest'>>,
  chunkBytes: number = WEIGHTS_CHUNK_BYTES,
): Generator<WeightsChunk> {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_WEIGHTS_CHUNK_BYTES) {
    throw new RangeError(`chunkBytes: got ${chunkBytes}, expected an integer in 1..${MAX_WEIGHTS_CHUNK_BYTES}`);
  }
  if (bytes.byteLength === 0) throw new RangeError('bytes: empty, expected the weights file contents');
  yield {
    chunk: {
      $case: 'header',
      value: {
        adapterConfigJson: '',
        manifest: [],
        ...header,
        totalBytes: bytes.byteLength,
        sha256: sha256Hex(bytes),
      },
    },
  };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let offset = 0; offset < buf.byteLength; offset += chunkBytes) {
    yield { chunk: { $case: 'data', value: { offset, data: buf.subarray(offset, offset + chunkBytes) } } };
  }
}

/**
 * Receiving side: feed it every message of the stream with `push`, then call
 * `finish` at the end of the stream to get the verified bytes. Memory for the
 * whole upload is allocated once, from the header's total_bytes (which the
 * caller bounds with `maxBytes`).
 */
export class WeightsAssembler {
  private header: WeightsHeader | undefined;
  private buffer: Buffer | undefined;
  private hash: Hash | undefined;
  private received = 0;
  private messages = 0;

  constructor(private readonly maxBytes: number) {}

  /** The header, once the first message has been pushed. */
  get weightsHeader(): WeightsHeader | undefined {
    return this.header;
  }

  /** Data bytes received so far. */
  get bytesReceived(): number {
    return this.received;
  }

  /** Takes the next message of the stream; throws WeightsUploadError on any breach of the contract. */
  push(message: WeightsChunk): void {
    const index = this.messages++;
    const chunk = message.chunk;
    if (chunk === undefined) throw new WeightsUploadError(`chunk[${index}]`, 'empty message, expected a header or data');
    if (chunk.$case === 'header') {
      if (index !== 0) throw new WeightsUploadError(`chunk[${index}].header`, 'a second header; only the first message may be a header');
      this.start(chunk.value);
      return;
    }
    if (this.header === undefined || this.buffer === undefined || this.hash === undefined) {
      throw new WeightsUploadError(`chunk[${index}].data`, 'data before the header; the first message must be the header');
    }
    this.append(chunk.value, index, this.buffer, this.hash);
  }

  /** Checks the total and the checksum and returns the uploaded bytes. */
  finish(): { header: WeightsHeader; bytes: Buffer } {
    if (this.header === undefined || this.buffer === undefined || this.hash === undefined) {
      throw new WeightsUploadError('chunk', 'the stream ended without a header');
    }
    if (this.received !== this.header.totalBytes) {
      throw new WeightsUploadError('header.total_bytes', `announced ${this.header.totalBytes} bytes, the stream carried ${this.received}`);
    }
    const digest = this.hash.digest('hex');
    if (digest !== this.header.sha256) {
      throw new WeightsUploadError('header.sha256', `announced ${this.header.sha256}, the received bytes hash to ${digest}`);
    }
    return { header: this.header, bytes: this.buffer };
  }

  private start(h: WeightsHeader): void {
    if (!Number.isSafeInteger(h.totalBytes) || h.totalBytes < 1 || h.totalBytes > this.maxBytes) {
      throw new WeightsUploadError('header.total_bytes', `got ${h.totalBytes}, expected an integer in 1..${this.maxBytes}`);
    }
    if (!/^[0-9a-f]{64}$/.test(h.sha256)) {
      throw new WeightsUploadError('header.sha256', `got "${h.sha256.slice(0, 80)}", expected 64 lowercase hex characters`);
    }
    if (h.totalBytes > bufferConstants.MAX_LENGTH) {
      throw new WeightsAllocationError(`header.total_bytes: ${h.totalBytes} bytes is more than one buffer of this Node can hold (${bufferConstants.MAX_LENGTH}); lower the server's upload bound`);
    }
    try {
      this.buffer = Buffer.allocUnsafe(h.totalBytes); // every byte is written before finish() succeeds
    } catch (err) {
      throw new WeightsAllocationError(`header.total_bytes: cannot allocate ${h.totalBytes} bytes for the upload: ${(err as Error).message}`);
    }
    this.header = h;
    this.hash = createHash('sha256');
  }

  private append(d: WeightsData, index: number, buffer: Buffer, hash: Hash): void {
    const field = `chunk[${index}].data`;
    if (d.offset !== this.received) {
      throw new WeightsUploadError(`${field}.offset`, `got ${d.offset}, expected ${this.received} (chunks must be contiguous and in order)`);
    }
    const n = d.data.byteLength;
    if (n === 0 || n > MAX_WEIGHTS_CHUNK_BYTES) {
      throw new WeightsUploadError(`${field}.data`, `got ${n} bytes, expected 1..${MAX_WEIGHTS_CHUNK_BYTES}`);
    }
    if (this.received + n > buffer.byteLength) {
      throw new WeightsUploadError(`${field}.data`, `${this.received} + ${n} bytes exceeds header.total_bytes ${buffer.byteLength}`);
    }
    buffer.set(d.data, this.received);
    hash.update(d.data);
    this.received += n;
  }
}
