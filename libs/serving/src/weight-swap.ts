/**
 * Verified weight swaps of a serving replica. Uploads are serialised; each is
 * validated and prepared off to the side (weights-update.ts), then waits as
 * the pending swap until nothing uses the weights: no sequence running (the
 * scheduler stops admitting meanwhile) and no log-prob computation in flight.
 * The scheduler then applies it in one synchronous block between decoding
 * steps, so every completion is produced by exactly one weights version.
 */
import type { LlamaModel } from '@posttrain/model';
import { preconditionFailed, ServingError } from './serving-error';
import { checkWeightsManifest, prepareWeights, type PreparedWeights, type WeightsFormatName, type WeightsPayload, type WeightsUpload } from './weights-update';

export interface WeightsLoadResult {
  version: number;
  duplicate: boolean;
  tensorsLoaded: number;
}

interface PendingSwap {
  prepared: PreparedWeights;
  upload: WeightsUpload;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class WeightSwap {
  private pendingSwap: PendingSwap | null = null;
  private uploadLock: Promise<unknown> = Promise.resolve();
  private readers = 0;
  private loadedVersion = 0;
  private loadedSha256 = '';
  private loadedFormat: WeightsFormatName | 'none' = 'none';

  /** `requestTurn` asks the scheduler to run its loop, which applies a pending swap once the weights are idle. */
  constructor(
    private readonly model: LlamaModel,
    private readonly requestTurn: () => void,
  ) {}

  /** Version of the weights being served; 0 until the first upload. */
  get version(): number {
    return this.loadedVersion;
  }

  /** Format of the last applied upload; 'none' for the weights the model was loaded with. */
  get format(): WeightsFormatName | 'none' {
    return this.loadedFormat;
  }

  /** Whether an upload waits to be applied (the scheduler admits no new sequences meanwhile). */
  get pending(): boolean {
    return this.pendingSwap !== null;
  }

  /** Runs `read` with the weights held: a pending swap waits until it is done. */
  async whileReading<T>(read: () => Promise<T>): Promise<T> {
    this.readers++;
    try {
      return await read();
    } finally {
      this.readers--;
    }
  }

  /** Applies the pending swap if nothing uses the weights (no running sequence, no reader); returns whether it did. */
  applyIfIdle(runningSequences: number): boolean {
    const swap = this.pendingSwap;
    if (!swap || runningSequences > 0 || this.readers > 0) return false;
    this.pendingSwap = null;
    try {
      swap.prepared.apply(this.model);
      this.loadedVersion = swap.upload.version;
      this.loadedSha256 = swap.upload.sha256;
      this.loadedFormat = swap.upload.format;
      swap.resolve();
    } catch (e) {
      swap.prepared.discard();
      swap.reject(e as Error);
    }
    return true;
  }

  /** Early check of an upload's header (version, manifest) before its data arrives; throws ServingError. */
  checkUploadHeader(upload: WeightsUpload): void {
    if (this.isDuplicate(upload)) return; // acknowledged after the data
    if (upload.version <= this.loadedVersion) {
      throw preconditionFailed(`weights version ${upload.version} is not newer than the loaded version ${this.loadedVersion} (and its sha256 differs)`, 'header.version');
    }
    checkWeightsManifest(this.model, upload);
  }

  /**
   * Applies a verified upload (bytes or a file whose size and SHA-256 match the header):
   * the same version with the same checksum is a duplicate (nothing changes);
   * an older or equal version otherwise is failed-precondition; a bad payload
   * is invalid-argument and leaves the old weights serving. Uploads are
   * serialised; the swap happens between decoding steps with no sequence running.
   */
  load(upload: WeightsUpload, payload: WeightsPayload): Promise<WeightsLoadResult> {
    const run = this.uploadLock.then(() => this.loadNow(upload, payload));
    this.uploadLock = run.catch(() => undefined);
    return run;
  }

  /** Refuses the pending swap, if any (the server is shutting down). */
  close(): void {
    if (!this.pendingSwap) return;
    this.pendingSwap.prepared.discard();
    this.pendingSwap.reject(new ServingError('cancelled', '', 'the server is shutting down'));
    this.pendingSwap = null;
  }

  private isDuplicate(upload: WeightsUpload): boolean {
    return upload.version === this.loadedVersion && upload.sha256 === this.loadedSha256;
  }

  private async loadNow(upload: WeightsUpload, payload: WeightsPayload): Promise<WeightsLoadResult> {
    if (this.isDuplicate(upload)) return { version: this.loadedVersion, duplicate: true, tensorsLoaded: 0 };
    this.checkUploadHeader(upload);
    const prepared = await prepareWeights(this.model, upload, payload);
    await new Promise<void>((resolve, reject) => {
      this.pendingSwap = { prepared, upload, resolve, reject };
      this.requestTurn();
    });
    return { version: this.loadedVersion, duplicate: false, tensorsLoaded: prepared.tensorCount };
  }
}
