import { open, type FileHandle } from 'node:fs/promises';
import { checkHeaderLength, decodeToFloat32, validateHeader, type DecodedTensor, type SafetensorsHeader, type SafetensorsHeaderEntry } from './parse-safetensors';
import { SafetensorsError } from './safetensors-error';

/** One tensor of a file as stored: its validated header entry and its raw bytes (little-endian, `entry.dtype`). */
export interface RawTensor {
  entry: SafetensorsHeaderEntry;
  bytes: Buffer;
}

/**
 * The tensors of a .safetensors file one at a time, in file order: the header
 * is read and validated first (offsets against the file size), then each
 * tensor's bytes are read from the file at its offset into a buffer of its
 * own. No buffer is larger than the largest tensor, so a file of any size
 * (more than the 4 GiB one Buffer holds) can be walked.
 */
export async function* safetensorsFileTensors(path: string): AsyncGenerator<RawTensor, SafetensorsHeader> {
  const { handle, header } = await openSafetensors(path);
  try {
    for (const entry of header.entries) {
      // Its own allocation (byteOffset 0), so an F32 tensor decodes to an aligned view.
      const bytes = Buffer.allocUnsafeSlow(entry.dataOffsets[1] - entry.dataOffsets[0]);
      await readExactly(handle, bytes, header.dataStart + entry.dataOffsets[0], path);
      yield { entry, bytes };
    }
    return header;
  } finally {
    await handle.close();
  }
}

/** Opens a .safetensors file and reads and validates its header (offsets against the file size); the caller closes the handle. */
export async function openSafetensors(path: string): Promise<{ handle: FileHandle; header: SafetensorsHeader }> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SafetensorsError(path, code === 'ENOENT' ? 'file not found' : `cannot read file: ${(err as Error).message}`);
  }
  try {
    const { size } = await handle.stat();
    const first8 = new Uint8Array(8);
    await handle.read(first8, 0, Math.min(8, size), 0);
    const headerBytes = new Uint8Array(checkHeaderLength(first8, size, path));
    await readExactly(handle, headerBytes, 8, path);
    return { handle, header: validateHeader(headerBytes, size, path) };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

async function readExactly(handle: FileHandle, into: Uint8Array, position: number, path: string): Promise<void> {
  for (let done = 0; done < into.byteLength; ) {
    // At most 1 GiB per read: Linux caps one read at 2 GiB - 4 KiB.
    const { bytesRead } = await handle.read(into, done, Math.min(into.byteLength - done, 1 << 30), position + done);
    if (bytesRead === 0) throw new SafetensorsError(path, `file shrank while reading (${done} of ${into.byteLength} bytes at offset ${position})`);
    done += bytesRead;
  }
}

/**
 * Reads and decodes a .safetensors file tensor by tensor (see
 * safetensorsFileTensors): the same result as readSafetensorsFile, without
 * ever holding the whole file in one buffer. Tensors come in name order.
 */
export async function readSafetensorsFileByTensor(path: string): Promise<{ tensors: Map<string, DecodedTensor>; metadata: Record<string, string> }> {
  const tensors = new Map<string, DecodedTensor>();
  const it = safetensorsFileTensors(path);
  let next = await it.next();
  for (; !next.done; next = await it.next()) {
    const { entry, bytes } = next.value;
    tensors.set(entry.name, { dtype: entry.dtype, shape: entry.shape, data: decodeToFloat32(bytes, 0, bytes.byteLength, entry.dtype) });
  }
  const sorted = new Map([...tensors.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { tensors: sorted, metadata: next.value.metadata };
}
