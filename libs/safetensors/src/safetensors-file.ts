import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseSafetensors, type DecodedTensor, type SafetensorsHeader } from './parse-safetensors';
import { SafetensorsError } from './safetensors-error';
import { openSafetensors } from './safetensors-tensors';
import { serializeSafetensors, type Float32TensorInput } from './serialize-safetensors';

/** Reads and validates a .safetensors file; errors name the file (see parseSafetensors for views vs copies). */
export async function readSafetensorsFile(
  path: string,
): Promise<{ tensors: Map<string, DecodedTensor>; metadata: Record<string, string> }> {
  let buffer: Buffer;
  try {
    buffer = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SafetensorsError(path, code === 'ENOENT' ? 'file not found' : `cannot read file: ${(err as Error).message}`);
  }
  return parseSafetensors(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), path);
}

/**
 * Reads and validates only the header of a .safetensors file (names, dtypes,
 * shapes, offsets against the file size), without reading the tensor data.
 */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const { handle, header } = await openSafetensors(path);
  await handle.close();
  return header;
}

/** Writes float32 tensors to a .safetensors file atomically (temp file, fsync, rename, fsync of the directory). */
export async function writeSafetensorsFile(
  path: string,
  tensors: ReadonlyMap<string, Float32TensorInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

/**
 * Writes `bytes` to `path` so that a reader (or a crash) sees either the old
 * file or the complete new one, never a partial file.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw new SafetensorsError(path, `cannot write file: ${(err as Error).message}`);
  }
  await syncDirectory(dirname(path));
}

/**
 * Writes a whole directory so that a crash leaves either the old `dir` or the
 * complete new one, never a mix: `fill` writes into a temp sibling directory,
 * which then replaces `dir` by rename. On failure the temp directory is
 * removed and the error passes through unchanged.
 */
export async function writeDirAtomic(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  const stamp = `${process.pid}-${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
  const tmp = join(parent, `.${basename(dir)}.tmp-${stamp}`);
  await mkdir(tmp);
  try {
    await fill(tmp);
    const old = join(parent, `.${basename(dir)}.old-${stamp}`);
    const had = await pathExists(dir);
    if (had) await rename(dir, old);
    await rename(tmp, dir);
    if (had) await rm(old, { recursive: true, force: true });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Whether anything (a file, a directory) exists at `path`. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Makes a rename durable; some platforms cannot open a directory, which only loses durability, not atomicity. */
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // not supported on this platform / filesystem
  } finally {
    await handle?.close();
  }
}
