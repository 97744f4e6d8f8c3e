/**
 * @posttrain/data: JSONL datasets in the TRL formats (language modelling,
 * prompt-completion, preference with explicit or implicit prompt, prompt-only
 * with ground truth; standard or conversational), validated line by line,
 * streamed, shuffled deterministically with resumable positions, tokenized
 * and batched (padding, SFT packing) into plain typed arrays.
 *
 * @example
 * ```ts
 * import { parseDataConfig, IndexedDataFile, createSftLoader, checkDataFile, formatDataCheckReport } from '@posttrain/data';
 *
 * const report = await checkDataFile('train.jsonl');
 * if (!report.ok) { console.error(formatDataCheckReport(report)); process.exit(1); }
 *
 * const config = parseDataConfig({ batchSize: 4, maxLength: 512, packing: true, seed: 7 });
 * const data = await IndexedDataFile.open('train.jsonl', config);
 * const loader = createSftLoader(data, tokenizer, config, checkpoint?.dataPosition);
 * const batch = await loader.next(); // { inputIds, attentionMask, lossMask, positionIds, segmentIds, ... }
 * const dataPosition = loader.position(); // save with the checkpoint
 * ```
 */
export { DATA_FORMATS, DATA_STYLES, DEFAULT_FIELD_NAMES, DataConfigError, defaultDataConfig, parseDataConfig } from './data-config';
export type { DataConfig, DataFieldNames, DataFormat, DataStyle, ErrorPolicy, TruncationPolicy } from './data-config';
export { DataError, describeProblem } from './data-error';
export type { DataProblem } from './data-error';
export type {
  ChatPreferenceRecord,
  ChatPromptCompletionRecord,
  ChatPromptOnlyRecord,
  DataLine,
  DataRecord,
  MessagesRecord,
  PreferenceRecord,
  PromptCompletionRecord,
  PromptOnlyRecord,
  TextRecord,
} from './data-record';
export { DEFAULT_GROUND_TRUTH_FIELDS, commonMessagePrefixLength, commonPrefixLength, detectFormat, parseRecord } from './parse-record';
export type { FieldProblem, ParseResult, RecordSchema } from './parse-record';
export { readJsonlLines } from './read-jsonl-lines';
export type { RawLine } from './read-jsonl-lines';
export { createReadSummary, loadDataFile, readDataFile, validateLine } from './read-data-file';
export type { DataReadSummary, LineOutcome, LocatedDataLine } from './read-data-file';
export { ArrayRecordSource, IndexedDataFile } from './indexed-data-file';
export type { RecordSource } from './indexed-data-file';
export { tokenizePreference, tokenizePrompt, tokenizeSft } from './tokenize-example';
export { previewExample } from './preview-example';
export type { PreviewSequence, RecordPreview, TokenRun } from './preview-example';
export type { LengthOptions, PreferenceExample, PromptExample, SftExample, SftTokenizeOptions, TokenizeResult } from './tokenize-example';
export { collatePreference, collatePrompts, collateSft, packSft, padSequences, shiftLabels } from './collate';
export type { PaddingSide, PreferenceBatch, PromptBatch, SftBatch } from './collate';
export { FixedSizeBatchBuilder, PackedSftBatchBuilder } from './batch-builder';
export type { BatchBuilder } from './batch-builder';
export { DataLoader, epochPermutation, validateDataPosition } from './data-loader';
export type { DataLoaderOptions, DataLoaderStats, DataPosition } from './data-loader';
export { createPreferenceLoader, createPromptLoader, createSftLoader } from './create-data-loader';
export { checkDataFile, formatDataCheckReport } from './check-data-file';
export type { DataCheckOptions, DataCheckReport } from './check-data-file';
export type { ChatMessage, TokenizerLike } from './tokenizer-like';
