/**
 * The data of an offline stage: its loader settings from the run config, the
 * training file, and the evaluation split (its own file, or a seeded share of
 * the training file).
 */
import { existsSync } from 'node:fs';
import type { DataConfig, RecordSource } from '@posttrain/data';
import { IndexedDataFile, parseDataConfig } from '@posttrain/data';
import { Rng } from '@posttrain/random';
import type { RunConfig } from './run-config';
import { RunConfigError } from './run-config';

/** Records [0, n) split into (train, eval) by a seeded shuffle: the first ceil(f * n) go to eval. */
class SubsetSource implements RecordSource {
  constructor(private readonly base: RecordSource, private readonly indices: number[]) {}
  get length(): number {
    return this.indices.length;
  }
  get(i: number) {
    if (!Number.isInteger(i) || i < 0 || i >= this.indices.length) throw new RangeError(`record index: expected an integer in [0, ${this.indices.length}), got ${i}`);
    return this.base.get(this.indices[i]);
  }
}

function splitSource(source: RecordSource, fraction: number, seed: number, file: string): { train: RecordSource; eval: RecordSource } {
  const n = source.length;
  const order = new Rng(seed).fork('eval-split').shuffle(Array.from({ length: n }, (_, i) => i));
  const k = Math.ceil(fraction * n);
  if (k < 1 || n - k < 1) throw new RunConfigError(`dataset.eval_fraction: ${fraction} of ${n} records in ${file} leaves ${n - k} for training and ${k} for evaluation; expected at least one each`);
  return { train: new SubsetSource(source, order.slice(k).sort((a, b) => a - b)), eval: new SubsetSource(source, order.slice(0, k).sort((a, b) => a - b)) };
}

async function openData(path: string, key: string, config: DataConfig): Promise<IndexedDataFile> {
  if (!existsSync(path)) throw new RunConfigError(`${key}: file ${JSON.stringify(path)} does not exist`);
  return IndexedDataFile.open(path, config);
}

/** The loader settings of a stage's data (shuffled for training, in file order for evaluation). */
export function dataConfigFor(config: RunConfig, batchSize: number, shuffle: boolean): DataConfig {
  const dataset = config.dataset;
  const stage = config.lm ?? config.sft ?? config.rm ?? config.dpo;
  const fields: Record<string, string> = {};
  for (const [key, value] of Object.entries(dataset.fields)) if (value !== null) fields[key] = value;
  return parseDataConfig(
    {
      format: dataset.format,
      style: dataset.style,
      fields,
      errorPolicy: dataset.error_policy,
      truncation: dataset.truncation,
      shuffle,
      dropLast: shuffle ? dataset.drop_last : false,
      seed: config.seed,
      batchSize,
      maxLength: stage?.max_length ?? null,
      packing: config.lm?.packing ?? config.sft?.packing ?? false,
      assistantOnlyLoss: config.sft?.assistant_only_loss ?? true,
      completionOnlyLoss: config.sft?.completion_only_loss ?? true,
    },
    'dataset',
  );
}

export interface StageData {
  trainData: DataConfig;
  evalData: DataConfig;
  train: RecordSource;
  eval: RecordSource | null;
  /** The open files, closed by close(). */
  close(): Promise<void>;
}

/** Opens the training file and the evaluation split of a stage. */
export async function openStageData(config: RunConfig): Promise<StageData> {
  const trainData = dataConfigFor(config, config.train.batch_size, config.dataset.shuffle);
  const evalData = dataConfigFor(config, config.train.eval_batch_size ?? config.train.batch_size, false);
  const trainFile = await openData(config.dataset.train, 'dataset.train', trainData);
  const files: IndexedDataFile[] = [trainFile];
  let train: RecordSource = trainFile;
  let evalSource: RecordSource | null = null;
  try {
    if (config.dataset.eval !== null) {
      const evalFile = await openData(config.dataset.eval, 'dataset.eval', evalData);
      files.push(evalFile);
      evalSource = evalFile;
    } else if (config.dataset.eval_fraction > 0) ({ train, eval: evalSource } = splitSource(trainFile, config.dataset.eval_fraction, config.seed, config.dataset.train));
  } catch (e) {
    await Promise.all(files.map((f) => f.close()));
    throw e;
  }
  return { trainData, evalData, train, eval: evalSource, close: async () => void (await Promise.all(files.map((f) => f.close()))) };
}
