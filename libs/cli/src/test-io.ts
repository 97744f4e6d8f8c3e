import { Writable } from 'node:stream';
import type { CommandIO } from './command';

/** In-memory stdout/stderr for running commands in tests. */
export function captureIO(): CommandIO & { out: () => string; err: () => string } {
  const chunks = { out: [] as string[], err: [] as string[] };
  const sink = (into: string[]) =>
    new Writable({
      write(chunk, _enc, cb) {
        into.push(String(chunk));
        cb();
      },
    });
  return { stdout: sink(chunks.out), stderr: sink(chunks.err), interrupted: new Promise(() => undefined), out: () => chunks.out.join(''), err: () => chunks.err.join('') };
}
