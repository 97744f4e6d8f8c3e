import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';

/** A file opened for appending: written synchronously, forced to disk on flush and close. */
export class AppendFile {
  private fd: number | null;

  /** `owner` names the writer in errors (`JsonlMetricsSink: <path> is closed`). */
  constructor(readonly path: string, private readonly owner: string) {
    this.fd = openSync(path, 'a');
  }

  /** Appends what `content` returns; throws, before calling it, once the file is closed. */
  append(content: () => string | Uint8Array): void {
    if (this.fd === null) throw new Error(`${this.owner}: ${this.path} is closed`);
    const data = content();
    writeSync(this.fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  /** Forces what was written to disk. */
  flush(): void {
    if (this.fd !== null) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === null) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = null;
  }
}
