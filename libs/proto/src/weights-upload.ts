// Both ends of PolicySampler.LoadWeights: split a weights file into the
// header + ordered data chunks the contract prescribes, and put them back
// together with every rule of the contract checked (header first, contiguous
// offsets, chunk size, exact total, SHA-256).
import { constants as bufferConstants } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import type { WeightsChunk, WeightsHeader } from './gen/posttrain/v1/policy_sampler';

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

/** What one message of a LoadWeights stream turned out to be, once the contract has checked it. */
export type AcceptedChunk = { kind: 'header'; header: WeightsHeader } | { kind: 'data'; offset: number; data: Uint8Array };

/**
 * The rules of one LoadWeights stream, apart from where its bytes go: header
 * first and only once, total_bytes within the bound, contiguous offsets,
 * chunk sizes, the exact total and the SHA-256 (hashed as the data arrives).
 * WeightsAssembler keeps the bytes in memory; WeightsSpool (weights-spool.ts)
 * writes large uploads to a file.
 */
export class WeightsStreamContract {
  private header: WeightsHeader | undefined;
  private readonly hash: Hash = createHash('sha256');
  private received = 0;
  private messages = 0;

  constructor(private readonly maxBytes: number) {}

  /** The header, once the first message has been accepted. */
  get weightsHeader(): WeightsHeader | undefined {
    return this.header;
  }

  /** Data bytes accepted so far. */
  get bytesReceived(): number {
    return this.received;
  }

  /** Checks the next message (hashing its data); throws WeightsUploadError on any breach of the contract. */
  accept(message: WeightsChunk): AcceptedChunk {
    const index = this.messages++;
    const chunk = message.chunk;
    if (chunk === undefined) throw new WeightsUploadError(`chunk[${index}]`, 'empty message, expected a header or data');
    if (chunk.$case === 'header') {
      if (index !== 0) throw new WeightsUploadError(`chunk[${index}].header`, 'a second header; only the first message may be a header');
      const h = chunk.value;
      if (!Number.isSafeInteger(h.totalBytes) || h.totalBytes < 1 || h.totalBytes > this.maxBytes) {
        throw new WeightsUploadError('header.total_bytes', `got ${h.totalBytes}, expected an integer in 1..${this.maxBytes}`);
      }
      if (!/^[0-9a-f]{64}$/.test(h.sha256)) {
        throw new WeightsUploadError('header.sha256', `got "${h.sha256.slice(0, 80)}", expected 64 lowercase hex characters`);
      }
      this.header = h;
      return { kind: 'header', header: h };
    }
    const field = `chunk[${index}].data`;
    if (this.header === undefined) throw new WeightsUploadError(field, 'data before the header; the first message must be the header');
    const d = chunk.value;
    if (d.offset !== this.received) {
      throw new WeightsUploadError(`${field}.offset`, `got ${d.offset}, expected ${this.received} (chunks must be contiguous and in order)`);
    }
    const n = d.data.byteLength;
    if (n === 0 || n > MAX_WEIGHTS_CHUNK_BYTES) {
      throw new WeightsUploadError(`${field}.data`, `got ${n} bytes, expected 1..${MAX_WEIGHTS_CHUNK_BYTES}`);
    }
    if (this.received + n > this.header.totalBytes) {
      throw new WeightsUploadError(`${field}.data`, `${this.received} + ${n} bytes exceeds header.total_bytes ${this.header.totalBytes}`);
    }
    this.hash.update(d.data);
    this.received += n;
    return { kind: 'data', offset: d.offset, data: d.data };
  }

  /** At the end of the stream: checks the total and the checksum and returns the header. */
  verify(): WeightsHeader {
    if (this.header === undefined) throw new WeightsUploadError('chunk', 'the stream ended without a header');
    if (this.received !== this.header.totalBytes) {
      throw new WeightsUploadError('header.total_bytes', `announced ${this.header.totalBytes} bytes, the stream carried ${this.received}`);
    }
    const digest = this.hash.digest('hex');
    if (digest !== this.header.sha256) {
      throw new WeightsUploadError('header.sha256', `announced ${this.header.sha256}, the received bytes hash to ${digest}`);
    }
    return this.header;
  }
}

/** One buffer for a whole upload of `totalBytes`; WeightsAllocationError (RESOURCE_EXHAUSTED) if this Node cannot hold it. */
export function allocateUpload(totalBytes: number): Buffer {
  if (totalBytes > bufferConstants.MAX_LENGTH) {
    throw new WeightsAllocationError(`header.total_bytes: ${totalBytes} bytes is more than one buffer of this Node can hold (${bufferConstants.MAX_LENGTH}); lower the server's upload bound`);
  }
  try {
    return Buffer.allocUnsafe(totalBytes); // every byte is written before the upload verifies
  } catch (err) {
    throw new WeightsAllocationError(`header.total_bytes: cannot allocate ${totalBytes} bytes for the upload: ${(err as Error).message}`);
  }
}

/**
 * Receiving side, in memory: feed it every message of the stream with
 * `push`, then call `finish` at the end of the stream to get the verified
 * bytes. Memory for the whole upload is allocated once, from the header's
 * total_bytes (which the caller bounds with `maxBytes`).
 */
export class WeightsAssembler {
  private readonly contract: WeightsStreamContract;
  private buffer: Buffer | undefined;

  constructor(maxBytes: number) {
    this.contract = new WeightsStreamContract(maxBytes);
  }

  /** The header, once the first message has been pushed. */
  get weightsHeader(): WeightsHeader | undefined {
    return this.contract.weightsHeader;
  }

  /** Data bytes received so far. */
  get bytesReceived(): number {
    return this.contract.bytesReceived;
  }

  /** Takes the next message of the stream; throws WeightsUploadError on any breach of the contract. */
  push(message: WeightsChunk): void {
    const c = this.contract.accept(message);
    if (c.kind === 'header') this.buffer = allocateUpload(c.header.totalBytes);
    else this.buffer!.set(c.data, c.offset);
  }

  /** Checks the total and the checksum and returns the uploaded bytes. */
  finish(): { header: WeightsHeader; bytes: Buffer } {
    const header = this.contract.verify();
    return { header, bytes: this.buffer! };
  }
}
