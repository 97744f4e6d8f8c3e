import { mkdir, readFile, unlink } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { DecodedTensor } from './parse-safetensors';
import { SafetensorsError } from './safetensors-error';
import { pathExists, readSafetensorsFile, writeFileAtomic } from './safetensors-file';
import { serializeSafetensors, type Float32TensorInput } from './serialize-safetensors';

/** File name of an unsharded checkpoint. */
export const SINGLE_FILE_NAME = 'model.safetensors';
/** File name of the index of a sharded checkpoint (Hugging Face layout). */
export const INDEX_FILE_NAME = 'model.safetensors.index.json';
/** Default shard size limit: a shard is serialized in one buffer, so stay well under typed-array limits. */
export const DEFAULT_MAX_SHARD_BYTES = 2 * 1024 ** 3;

/** What readSafetensorsCheckpoint returns. */
export interface SafetensorsCheckpoint {
  tensors: Map<string, DecodedTensor>;
  /** `__metadata__` of the file(s); for shards, the union (the first shard wins on conflicts). */
  metadata: Record<string, string>;
  /** Data files read, relative to the directory, in the order read. */
  files: string[];
}

/** Options of writeSafetensorsCheckpoint. */
export interface WriteCheckpointOptions {
  /** Largest data size of one shard in bytes; over it, the checkpoint is sharded. A bigger tensor gets a shard of its own. */
  maxShardBytes?: number;
  /** `__metadata__` written into every file. */
  metadata?: Record<string, string>;
}

/**
 * Reads the safetensors weights of a model directory: `model.safetensors.index.json`
 * with its shards when present, else `model.safetensors`. The index is
 * validated: every mapped file exists and parses, every tensor lies in the file
 * the map names, and no tensor is missing from or extra to the map.
 */
export async function readSafetensorsCheckpoint(dir: string): Promise<SafetensorsCheckpoint> {
  const indexPath = join(dir, INDEX_FILE_NAME);
  if (!(await pathExists(indexPath))) {
    const singlePath = join(dir, SINGLE_FILE_NAME);
    if (!(await pathExists(singlePath))) {
      throw new SafetensorsError(dir, `no ${SINGLE_FILE_NAME} or ${INDEX_FILE_NAME} in the directory`);
    }
    const { tensors, metadata } = await readSafetensorsFile(singlePath);
    return { tensors, metadata, files: [SINGLE_FILE_NAME] };
  }

  const weightMap = await readIndex(indexPath);
  const byFile = new Map<string, string[]>();
  for (const [tensor, file] of Object.entries(weightMap)) {
    const list = byFile.get(file);
    if (list === undefined) byFile.set(file, [tensor]);
    else list.push(tensor);
  }
  const tensors = new Map<string, DecodedTensor>();
  const metadata: Record<string, string> = {};
  const files: string[] = [];
  for (const [file, expected] of byFile) {
    const shardPath = join(dir, file);
    if (!(await pathExists(shardPath))) {
      throw new SafetensorsError(indexPath, `weight_map names shard "${file}" (for tensor "${expected[0]}"), which does not exist (${shardPath})`);
    }
    const shard = await readSafetensorsFile(shardPath);
    files.push(file);
    for (const [key, value] of Object.entries(shard.metadata)) if (!(key in metadata)) metadata[key] = value;
    for (const [name, tensor] of shard.tensors) {
      const mapped = weightMap[name];
      if (mapped === undefined) {
        throw new SafetensorsError(indexPath, `tensor is in shard "${file}" but not listed in weight_map`, name);
      }
      if (mapped !== file) {
        throw new SafetensorsError(indexPath, `tensor is in shard "${file}" but weight_map says "${mapped}"`, name);
      }
      tensors.set(name, tensor);
    }
    for (const name of expected) {
      if (!shard.tensors.has(name)) throw new SafetensorsError(indexPath, `weight_map says shard "${file}" but the tensor is not in it`, name);
    }
  }
  const sorted = new Map([...tensors.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { tensors: sorted, metadata, files };
}

/**
 * Writes float32 tensors as a model directory's weights: `model.safetensors`
 * when they fit in `maxShardBytes`, else shards `model-0000i-of-0000n.safetensors`
 * plus `model.safetensors.index.json` (written last). Each file is written
 * atomically; files of the other layout left from an earlier save are removed
 * afterwards, so the reader never prefers a stale index.
 */
export async function writeSafetensorsCheckpoint(
  dir: string,
  tensors: ReadonlyMap<string, Float32TensorInput>,
  options: WriteCheckpointOptions = {},
): Promise<void> {
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes <= 0) {
    throw new SafetensorsError(dir, `maxShardBytes must be a positive integer, got ${String(maxShardBytes)}`);
  }
  await mkdir(dir, { recursive: true });
  const indexPath = join(dir, INDEX_FILE_NAME);
  const staleShards = await listedShards(indexPath);

  // Greedy packing in name order, the order the reader returns.
  const names = [...tensors.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const shards: string[][] = [];
  let current: string[] = [];
  let currentBytes = 0;
  let totalBytes = 0;
  for (const name of names) {
    const bytes = (tensors.get(name) as Float32TensorInput).data.byteLength;
    if (current.length > 0 && currentBytes + bytes > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(name);
    currentBytes += bytes;
    totalBytes += bytes;
  }
  shards.push(current);

  if (shards.length === 1) {
    await writeFileAtomic(join(dir, SINGLE_FILE_NAME), serializeSafetensors(tensors, options.metadata));
    await removeIfExists(indexPath);
    for (const file of staleShards) if (file !== SINGLE_FILE_NAME) await removeIfExists(join(dir, file));
    return;
  }

  const pad = (n: number) => String(n).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  const written = new Set<string>();
  for (let i = 0; i < shards.length; i++) {
    const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    const subset = new Map(shards[i].map((name) => [name, tensors.get(name) as Float32TensorInput]));
    await writeFileAtomic(join(dir, file), serializeSafetensors(subset, options.metadata));
    for (const name of shards[i]) weightMap[name] = file;
    written.add(file);
  }
  const index = { metadata: { total_size: totalBytes }, weight_map: weightMap };
  await writeFileAtomic(indexPath, `${JSON.stringify(index, null, 2)}\n`);
  await removeIfExists(join(dir, SINGLE_FILE_NAME));
  for (const file of staleShards) if (!written.has(file)) await removeIfExists(join(dir, file));
}

async function readIndex(indexPath: string): Promise<Record<string, string>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (err) {
    throw new SafetensorsError(indexPath, `cannot read index: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new SafetensorsError(indexPath, 'index must be a JSON object {"metadata": {...}, "weight_map": {...}}');
  }
  const { metadata, weight_map: weightMap } = parsed as Record<string, unknown>;
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new SafetensorsError(indexPath, `"metadata" must be an object, got ${JSON.stringify(metadata)}`);
    }
    const totalSize = (metadata as Record<string, unknown>).total_size;
    if (totalSize !== undefined && !(Number.isSafeInteger(totalSize) && (totalSize as number) >= 0)) {
      throw new SafetensorsError(indexPath, `"metadata.total_size" must be a non-negative integer, got ${JSON.stringify(totalSize)}`);
    }
  }
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new SafetensorsError(indexPath, `"weight_map" must be an object {tensor name: shard file}, got ${JSON.stringify(weightMap)}`);
  }
  const entries = Object.entries(weightMap as Record<string, unknown>);
  if (entries.length === 0) throw new SafetensorsError(indexPath, '"weight_map" is empty');
  for (const [name, file] of entries) {
    if (typeof file !== 'string' || file === '' || isAbsolute(file) || file.split(/[\\/]/).includes('..')) {
      throw new SafetensorsError(indexPath, `"weight_map" value must be a shard file name inside the directory, got ${JSON.stringify(file)}`, name);
    }
  }
  return weightMap as Record<string, string>;
}

/** Shard files listed by an existing index, or none when there is no readable index. */
async function listedShards(indexPath: string): Promise<string[]> {
  try {
    return [...new Set(Object.values(await readIndex(indexPath)))];
  } catch {
    return [];
  }
}

async function removeIfExists(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw new SafetensorsError(path, `cannot remove stale file: ${err.message}`);
  });
}
