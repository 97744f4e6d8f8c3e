import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RewardSpecEntry } from '@posttrain/rewards';
import { generateTaskData, serializeRecords, type TaskFileKind } from './generate-task-data';
import type { TaskOptions } from './task-options';
import { TASK_REWARD_SPEC } from './task-reward';

/** Bumped whenever a format or a generation rule changes, so old files are recognised as stale. */
export const TASK_GENERATOR_VERSION = 2;

export interface TaskManifestFile {
  readonly name: string;
  readonly kind: TaskFileKind;
  readonly split: 'train' | 'eval';
  readonly records: number;
  readonly bytes: number;
  readonly sha256: string;
}

/** manifest.json: what was generated, from what, and a digest of every file. */
export interface TaskManifest {
  readonly task: 'arithmetic-worked-steps';
  readonly generatorVersion: number;
  readonly seed: number;
  readonly options: TaskOptions;
  /** The answer checker (libs/rewards spec) that RL rewards and evaluation use. */
  readonly reward: readonly RewardSpecEntry[];
  readonly files: readonly TaskManifestFile[];
}

/** Writes `text` to `path` through a temporary file and a rename, so no reader sees half a file. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/**
 * Generates the task ({@link generateTaskData}) into `outDir` (created if
 * missing): one JSONL file per part and a manifest.json with record counts,
 * byte sizes and sha256 digests. Same options, same bytes, manifest included
 * (it holds no time stamp). Returns the manifest.
 */
export async function writeTaskFiles(outDir: string, rawOptions?: unknown): Promise<TaskManifest> {
  const data = generateTaskData(rawOptions);
  await mkdir(outDir, { recursive: true });
  const files: TaskManifestFile[] = [];
  for (const file of data.files) {
    const text = serializeRecords(file.records);
    await writeAtomic(join(outDir, file.name), text);
    files.push({
      name: file.name,
      kind: file.kind,
      split: file.split,
      records: file.records.length,
      bytes: Buffer.byteLength(text),
      sha256: createHash('sha256').update(text).digest('hex'),
    });
  }
  const manifest: TaskManifest = {
    task: 'arithmetic-worked-steps',
    generatorVersion: TASK_GENERATOR_VERSION,
    seed: data.options.seed,
    options: data.options,
    reward: TASK_REWARD_SPEC,
    files,
  };
  await writeAtomic(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}
