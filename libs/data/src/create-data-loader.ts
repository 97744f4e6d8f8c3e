import { FixedSizeBatchBuilder, PackedSftBatchBuilder } from './batch-builder';
import { collatePreference, collatePrompts, collateSft, type PaddingSide, type PreferenceBatch, type PromptBatch, type SftBatch } from './collate';
import type { DataConfig } from './data-config';
import { DataLoader, type DataPosition } from './data-loader';
import type { RecordSource } from './indexed-data-file';
import {
  tokenizePreference,
  tokenizePrompt,
  tokenizeSft,
  type PreferenceExample,
  type PromptExample,
  type SftExample,
} from './tokenize-example';
import type { TokenizerLike } from './tokenizer-like';

/**
 * SFT batches from language-modeling or prompt-completion data, per the
 * config: batchSize rows, right-padded, or (packing) batchSize rows of
 * exactly maxLength tokens holding several examples each.
 */
export function createSftLoader(source: RecordSource, tokenizer: TokenizerLike, config: DataConfig, position?: DataPosition): DataLoader<SftExample, SftBatch> {
  if (config.packing && config.maxLength === null) throw new Error('data.packing: packing needs data.maxLength, got maxLength unset');
  const padTokenId = tokenizer.padTokenId;
  return new DataLoader<SftExample, SftBatch>({
    source,
    encode: (line) => tokenizeSft(line, tokenizer, config),
    createBatch: () =>
      config.packing && config.maxLength !== null
        ? new PackedSftBatchBuilder(config.batchSize, config.maxLength, padTokenId)
        : new FixedSizeBatchBuilder(config.batchSize, (examples: SftExample[]) => collateSft(examples, { padTokenId })),
    seed: config.seed,
    shuffle: config.shuffle,
    dropLast: config.dropLast,
    position,
  });
}

/** Preference-pair batches (DPO, reward models) from preference data. */
export function createPreferenceLoader(
  source: RecordSource,
  tokenizer: TokenizerLike,
  config: DataConfig,
  position?: DataPosition,
): DataLoader<PreferenceExample, PreferenceBatch> {
  const padTokenId = tokenizer.padTokenId;
  return new DataLoader<PreferenceExample, PreferenceBatch>({
    source,
    encode: (line) => tokenizePreference(line, tokenizer, config),
    createBatch: () => new FixedSizeBatchBuilder(config.batchSize, (examples: PreferenceExample[]) => collatePreference(examples, { padTokenId })),
    seed: config.seed,
    shuffle: config.shuffle,
    dropLast: config.dropLast,
    position,
  });
}

/**
 * Prompt batches for generation (GRPO, PPO), left-padded by default, with
 * their ground truths. config.maxLength bounds the prompt here.
 */
export function createPromptLoader(
  source: RecordSource,
  tokenizer: TokenizerLike,
  config: DataConfig,
  position?: DataPosition,
  paddingSide: PaddingSide = 'left',
): DataLoader<PromptExample, PromptBatch> {
  const padTokenId = tokenizer.padTokenId;
  return new DataLoader<PromptExample, PromptBatch>({
    source,
    encode: (line) => tokenizePrompt(line, tokenizer, config),
    createBatch: () => new FixedSizeBatchBuilder(config.batchSize, (examples: PromptExample[]) => collatePrompts(examples, { padTokenId, paddingSide })),
    seed: config.seed,
    shuffle: config.shuffle,
    dropLast: config.dropLast,
    position,
  });
}
