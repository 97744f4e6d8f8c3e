import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseDataConfig } from './data-config';
import { epochPermutation } from './data-loader';
import { IndexedDataFile } from './indexed-data-file';

// Big-file behaviour: one streaming pass to index, then shuffled access, with
// memory that grows with the number of lines (16 bytes each), not the bytes.
// Garbage from parsing would blur the measurement: collect it first (gc
// exposed at run time, as `npm run test:slow` does not pass --expose-gc).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
test('indexing a large file keeps offsets, not records, in memory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-big-'));
  const file = join(dir, 'big.jsonl');
  const lines = 400_000;
  const out = createWriteStream(file);
  const pad = 'lorem ipsum dolor sit amet '.repeat(8);
  for (let i = 0; i < lines; i++) {
    if (!out.write(JSON.stringify({ prompt: `question ${i}: ${pad}`, completion: `answer ${i}` }) + '\n')) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const bytes = statSync(file).size;
  try {
    gc();
    const memory = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const heapBefore = memory();
    const t0 = performance.now();
    const data = await IndexedDataFile.open(file, parseDataConfig({}));
    const indexSeconds = (performance.now() - t0) / 1000;
    gc();
    const heapGrowth = memory() - heapBefore;
    try {
      assert.equal(data.length, lines);
      const order = epochPermutation(1, 0, lines);
      const t1 = performance.now();
      const reads = 20_000;
      for (let k = 0; k < reads; k++) {
        const i = order[k];
        const { line, record } = await data.get(i);
        assert.equal(line, i + 1);
        assert.ok(record.format === 'prompt-completion' && record.completion === `answer ${i}`);
      }
      const readSeconds = (performance.now() - t1) / 1000;
      console.log(
        `indexed ${lines} lines (${(bytes / 2 ** 20).toFixed(1)} MiB) in ${indexSeconds.toFixed(2)} s ` +
          `(${(bytes / 2 ** 20 / indexSeconds).toFixed(1)} MiB/s), memory growth (heap + array buffers) ${(heapGrowth / 2 ** 20).toFixed(1)} MiB; ` +
          `${reads} shuffled reads in ${readSeconds.toFixed(2)} s (${Math.round(reads / readSeconds)} records/s)`,
      );
      // The records themselves would take more than the file's size; the index is 16 bytes a line (x2 for growth).
      assert.ok(heapGrowth < bytes / 4, `memory grew ${heapGrowth} bytes for a ${bytes}-byte file`);
    } finally {
      await data.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
