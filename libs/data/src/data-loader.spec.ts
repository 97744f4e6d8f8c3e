import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixedSizeBatchBuilder } from './batch-builder';
import type { SftBatch } from './collate';
import { createPreferenceLoader, createPromptLoader, createSftLoader } from './create-data-loader';
import { parseDataConfig } from './data-config';
import { DataLoader, epochPermutation, validateDataPosition, type DataPosition } from './data-loader';
import type { DataLine } from './data-record';
import { FakeTokenizer } from './fake-tokenizer';
import { ArrayRecordSource, IndexedDataFile } from './indexed-data-file';

const tok = new FakeTokenizer();
const textLines = (n: number, length: (i: number) => number = () => 3): DataLine[] =>
  Array.from({ length: n }, (_, i) => ({ line: i + 1, record: { format: 'language-modeling', style: 'standard', text: 'x'.repeat(length(i)) + String.fromCharCode(65 + (i % 26)) } }));

/** A loader whose batches are just the line numbers they hold, to compare orders. */
function lineLoader(n: number, options: { seed: number; shuffle?: boolean; dropLast?: boolean; batchSize?: number; position?: DataPosition; drop?: (line: number) => boolean }) {
  return new DataLoader<number, number[]>({
    source: new ArrayRecordSource(textLines(n)),
    encode: (d) => (options.drop?.(d.line) ? { ok: false, reason: 'test drop' } : { ok: true, example: d.line, truncated: false }),
    createBatch: () => new FixedSizeBatchBuilder(options.batchSize ?? 4, (lines: number[]) => lines),
    seed: options.seed,
    shuffle: options.shuffle ?? true,
    dropLast: options.dropLast ?? false,
    position: options.position,
  });
}

async function take<B>(loader: { next(): Promise<B> }, k: number): Promise<B[]> {
  const out: B[] = [];
  for (let i = 0; i < k; i++) out.push(await loader.next());
  return out;
}

describe('epochPermutation', () => {
  test('is a permutation, the same for the same seed and epoch, different across epochs and seeds', () => {
    const p = epochPermutation(7, 0, 50);
    assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
    assert.deepEqual(epochPermutation(7, 0, 50), p);
    assert.notDeepEqual(epochPermutation(7, 1, 50), p);
    assert.notDeepEqual(epochPermutation(8, 0, 50), p);
    assert.deepEqual(epochPermutation(7, 3, 5, false), [0, 1, 2, 3, 4]);
  });
});

describe('DataLoader', () => {
  test('each epoch visits every record once, in its epoch permutation, with a smaller last batch', async () => {
    const loader = lineLoader(10, { seed: 3, batchSize: 4 });
    for (let epoch = 0; epoch < 3; epoch++) {
      const batches: number[][] = [];
      for await (const batch of loader.epochBatches()) batches.push(batch);
      assert.deepEqual(batches.map((b) => b.length), [4, 4, 2]);
      assert.deepEqual(batches.flat(), epochPermutation(3, epoch, 10).map((i) => i + 1));
      assert.deepEqual(loader.position(), { seed: 3, epoch: epoch + 1, index: 0, datasetSize: 10 });
    }
  });

  test('an epoch that ends on a full batch stops there', async () => {
    const loader = lineLoader(8, { seed: 1, batchSize: 4 });
    const batches: number[][] = [];
    for await (const batch of loader.epochBatches()) batches.push(batch);
    assert.equal(batches.length, 2);
    assert.equal(loader.currentEpoch, 1);
  });

  test('dropLast discards and counts the incomplete batch; drops are counted with their lines', async () => {
    const loader = lineLoader(10, { seed: 3, batchSize: 4, dropLast: true, drop: (line) => line === 5 });
    const batches = await take(loader, 4);
    // 9 usable records per epoch: two full batches, one record discarded at the end of each epoch.
    assert.ok(batches.every((b) => b.length === 4));
    assert.equal(loader.stats.droppedAtEpochEnd, 1);
    // Line 5 is dropped in epoch 0, and in epoch 1 if it comes before the end of the 2nd batch there.
    const inEpoch1 = epochPermutation(3, 1, 10).indexOf(4) < loader.position().index ? 1 : 0;
    assert.equal(loader.stats.dropped, 1 + inEpoch1);
    assert.deepEqual(loader.stats.droppedLines[0], { epoch: 0, line: 5, reason: 'test drop' });
    assert.equal(loader.stats.droppedLines.length, loader.stats.dropped);
    assert.ok(!batches.flat().includes(5));
  });

  test('resuming from a saved position yields exactly the batches that would have followed', async () => {
    const total = 17;
    for (const options of [
      { seed: 11, batchSize: 4 },
      { seed: 11, batchSize: 4, dropLast: true, drop: (line: number) => line % 7 === 0 },
      { seed: 2, batchSize: 3, shuffle: false },
    ]) {
      const uninterrupted = await take(lineLoader(13, options), total);
      for (const k of [0, 1, 3, 4, 5, 9, 16]) {
        const first = lineLoader(13, options);
        const before = await take(first, k);
        const saved = JSON.parse(JSON.stringify(first.position())) as unknown;
        const resumed = lineLoader(13, { ...options, position: validateDataPosition(saved) });
        const after = await take(resumed, total - k);
        assert.deepEqual([...before, ...after], uninterrupted, `k=${k} ${JSON.stringify(saved)}`);
      }
    }
  });

  test('resuming packed SFT batches, with an example waiting for the next batch, from an indexed file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'posttrain-loader-'));
    const file = join(dir, 'sft.jsonl');
    // Lengths vary so that rows fill unevenly; line 9 is too long and, with truncation 'drop', is dropped every epoch.
    const lengths = [2, 5, 1, 7, 3, 3, 6, 2, 40, 4, 1, 5, 2, 6, 3];
    writeFileSync(file, lengths.map((n, i) => JSON.stringify({ text: 'abcdefgh'.repeat(5).slice(0, n) + i })).join('\n') + '\n');
    const config = parseDataConfig({ batchSize: 2, packing: true, maxLength: 12, truncation: 'drop', seed: 5 });
    const data = await IndexedDataFile.open(file, config);
    try {
      const total = 12;
      const uninterrupted = await take(createSftLoader(data, tok, config), total);
      // Every example is in some batch exactly once per epoch, except line 9.
      const firstEpochLines = new Set<number>();
      const loaderForEpoch = createSftLoader(data, tok, config);
      for await (const batch of loaderForEpoch.epochBatches()) for (const row of batch.lines) for (const l of row) firstEpochLines.add(l);
      assert.deepEqual([...firstEpochLines].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]);
      assert.equal(loaderForEpoch.stats.dropped, 1);
      assert.equal(loaderForEpoch.stats.droppedLines[0].line, 9);

      for (const k of [1, 2, 3, 5, 8]) {
        const first = createSftLoader(data, tok, config);
        const before = await take(first, k);
        const resumed = createSftLoader(data, tok, config, first.position());
        const after = await take(resumed, total - k);
        const all: SftBatch[] = [...before, ...after];
        assert.deepEqual(all, uninterrupted, `k=${k}`);
      }
      // The packed rows are full-length and never hold more than maxLength tokens.
      for (const batch of uninterrupted) {
        assert.equal(batch.seqLen, 12);
        assert.equal(batch.inputIds.length, batch.batchSize * 12);
      }
    } finally {
      await data.close();
    }
  });

  test('preference and prompt loaders resume too', async () => {
    const pref: DataLine[] = Array.from({ length: 9 }, (_, i) => ({
      line: i + 1,
      record: { format: 'preference', style: 'standard', prompt: `${i}+${i}=`, chosen: String(2 * i), rejected: String(2 * i + 1) },
    }));
    const config = parseDataConfig({ batchSize: 2, seed: 9 });
    const source = new ArrayRecordSource(pref);
    const full = await take(createPreferenceLoader(source, tok, config), 8);
    const first = createPreferenceLoader(source, tok, config);
    const before = await take(first, 3);
    const after = await take(createPreferenceLoader(source, tok, config, first.position()), 5);
    assert.deepEqual([...before, ...after], full);

    const prompts = await take(createPromptLoader(source, tok, config), 5);
    assert.equal(prompts[0].paddingSide, 'left');
    assert.deepEqual(prompts.flatMap((b) => b.lines).slice(0, 9).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('positions are validated against the loader', () => {
    assert.throws(() => lineLoader(5, { seed: 1, position: { seed: 2, epoch: 0, index: 0, datasetSize: 5 } }), /position\.seed: expected the loader's seed 1, got 2/);
    assert.throws(() => lineLoader(5, { seed: 1, position: { seed: 1, epoch: 0, index: 0, datasetSize: 6 } }), /datasetSize: expected the dataset's 5 records, got 6/);
    assert.throws(() => validateDataPosition({ seed: 1, epoch: -1, index: 0, datasetSize: 5 }), /data position\.epoch: expected a non-negative integer, got -1/);
    assert.throws(() => validateDataPosition({ seed: 1, epoch: 0, index: 0, datasetSize: 5, step: 3 }), /data position\.step: unknown key/);
    assert.throws(() => validateDataPosition({ seed: 1, epoch: 0, index: 6, datasetSize: 5 }), /index: expected at most datasetSize 5, got 6/);
  });

  test('an epoch in which every record is dropped is an error, not an endless loop', async () => {
    const loader = lineLoader(3, { seed: 1, drop: () => true });
    await assert.rejects(loader.next(), /epoch 0 used none of the 3 records/);
  });
});
