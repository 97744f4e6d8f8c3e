// Receiving side of PolicySampler.LoadWeights for uploads of any size: small
// ones assembled in memory, larger ones written to a temporary file as they
// arrive (hashed incrementally), so no buffer ever holds the whole upload.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, statfs, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { WeightsChunk, WeightsHeader } from './gen/posttrain/v1/policy_sampler';
import { allocateUpload, WeightsAllocationError, WeightsStreamContract } from './weights-upload';

export interface WeightsSpoolOptions {
  /** Largest header.total_bytes accepted; a larger one is WeightsUploadError (INVALID_ARGUMENT) before anything is allocated. */
  maxBytes: number;
  /** Uploads of at most this many bytes are assembled in one buffer; larger ones go to a file under `dir`. */
  memoryBytes: number;
  /** Directory of the temporary files (created if missing). */
  dir: string;
  /** Bytes free for this process on `dir`'s filesystem; statfs by default (a test can pretend the disk is full). */
  freeBytes?: (dir: string) => Promise<number>;
}

/** A verified upload: its bytes in memory, or the path of the file holding them (removed by WeightsSpool.dispose). */
export type SpooledWeights = { header: WeightsHeader; bytesReceived: number } & ({ bytes: Buffer; path?: undefined } | { path: string; bytes?: undefined });

async function statfsFree(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/**
 * Feed it every message of the stream with `push` (awaited: a file write is
 * the stream's backpressure), call `finish` at its end to verify the total
 * and the SHA-256, and always `dispose` afterwards: it closes and removes the
 * temporary file, whether the upload succeeded, failed or was cancelled.
 */
export class WeightsSpool {
  private readonly contract: WeightsStreamContract;
  private buffer: Buffer | undefined;
  private file: FileHandle | undefined;
  private path: string | undefined;

  constructor(private readonly options: WeightsSpoolOptions) {
    this.contract = new WeightsStreamContract(options.maxBytes);
  }

  /** The header, once the first message has been pushed. */
  get weightsHeader(): WeightsHeader | undefined {
    return this.contract.weightsHeader;
  }

  /** Data bytes received so far. */
  get bytesReceived(): number {
    return this.contract.bytesReceived;
  }

  /** The temporary file, while an upload larger than memoryBytes is being received. */
  get spoolPath(): string | undefined {
    return this.path;
  }

  /** Takes the next message; throws WeightsUploadError on a breach of the contract, WeightsAllocationError when memory or disk cannot hold it. */
  async push(message: WeightsChunk): Promise<void> {
    const c = this.contract.accept(message);
    if (c.kind === 'header') return this.start(c.header.totalBytes);
    if (this.buffer) {
      this.buffer.set(c.data, c.offset);
      return;
    }
    try {
      for (let done = 0; done < c.data.byteLength; ) {
        const { bytesWritten } = await this.file!.write(c.data, done, c.data.byteLength - done, c.offset + done);
        done += bytesWritten;
      }
    } catch (err) {
      throw new WeightsAllocationError(`cannot write the upload to ${this.path}: ${(err as Error).message}`);
    }
  }

  /** Checks the total and the checksum; the result is valid until dispose. */
  async finish(): Promise<SpooledWeights> {
    const header = this.contract.verify();
    const bytesReceived = this.contract.bytesReceived;
    if (this.buffer) return { header, bytesReceived, bytes: this.buffer };
    await this.closeFile();
    return { header, bytesReceived, path: this.path! };
  }

  /** Closes and removes the temporary file, if any; safe to call more than once. */
  async dispose(): Promise<void> {
    this.buffer = undefined;
    await this.closeFile().catch(() => undefined);
    if (this.path) await rm(this.path, { force: true });
    this.path = undefined;
  }

  private async closeFile(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    await file?.close();
  }

  private async start(totalBytes: number): Promise<void> {
    const { memoryBytes, dir } = this.options;
    if (totalBytes <= memoryBytes) {
      this.buffer = allocateUpload(totalBytes);
      return;
    }
    let free: number;
    try {
      await mkdir(dir, { recursive: true });
      free = await (this.options.freeBytes ?? statfsFree)(dir);
    } catch (err) {
      throw new WeightsAllocationError(`header.total_bytes: cannot use the upload directory ${dir}: ${(err as Error).message}`);
    }
    if (totalBytes > free) {
      throw new WeightsAllocationError(`header.total_bytes: ${totalBytes} bytes do not fit in the upload directory ${dir} (${free} bytes free)`);
    }
    const path = join(dir, `posttrain-upload-${process.pid}-${randomBytes(6).toString('hex')}.safetensors`);
    try {
      this.file = await open(path, 'wx', 0o600);
    } catch (err) {
      throw new WeightsAllocationError(`header.total_bytes: cannot create ${path}: ${(err as Error).message}`);
    }
    this.path = path;
  }
}
