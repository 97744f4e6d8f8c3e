import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDataConfig } from './data-config';
import { ArrayRecordSource, IndexedDataFile } from './indexed-data-file';
import { loadDataFile } from './read-data-file';

const tmp = mkdtempSync(join(tmpdir(), 'posttrain-index-'));

describe('IndexedDataFile', () => {
  test('random access returns the same records as a sequential read, skipping bad and blank lines', async () => {
    const file = join(tmp, 'many.jsonl');
    const lines: string[] = [];
    for (let i = 0; i < 300; i++) {
      if (i % 50 === 7) lines.push('');
      else if (i % 61 === 3) lines.push('{"prompt": "broken"');
      else lines.push(JSON.stringify({ prompt: `q${i} ${'é'.repeat(i % 5)}`, completion: `a${i}` }));
    }
    writeFileSync(file, lines.join('\r\n') + '\r\n');
    const config = parseDataConfig({ errorPolicy: 'skip' });
    const { lines: expected, summary } = await loadDataFile(file, config);
    const data = await IndexedDataFile.open(file, config);
    try {
      assert.equal(data.length, expected.length);
      assert.deepEqual(data.summary, summary);
      // 300 lines; blank where i % 50 == 7 (6 lines), broken where i % 61 == 3 (i = 3, 64, 125, 186, 247: 5 lines).
      assert.equal(data.length, 300 - 6 - 5);
      for (const i of [data.length - 1, 0, 17, 100, 5]) {
        assert.deepEqual(await data.get(i), { line: expected[i].line, record: expected[i].record });
        assert.equal(data.lineNumber(i), expected[i].line);
      }
      await assert.rejects(async () => data.get(data.length), /record index: expected an integer in \[0, 289\), got 289/);
    } finally {
      await data.close();
    }
  });

  test('a file changed after indexing is detected', async () => {
    const file = join(tmp, 'changing.jsonl');
    writeFileSync(file, '{"text": "a"}\n{"text": "b"}\n');
    const data = await IndexedDataFile.open(file, parseDataConfig({}));
    try {
      appendFileSync(file, '{"text": "c"}\n');
      await assert.rejects(data.get(0), /changed since it was indexed/);
    } finally {
      await data.close();
    }
  });

  test('with errorPolicy fail, opening a file with a bad line rejects', async () => {
    const file = join(tmp, 'bad.jsonl');
    writeFileSync(file, '{"text": "a"}\n{"text": 1}\n');
    await assert.rejects(IndexedDataFile.open(file, parseDataConfig({})), /bad\.jsonl:2: field "text": expected a non-empty string/);
  });
});

describe('ArrayRecordSource', () => {
  test('bounds-checks its index', () => {
    const source = new ArrayRecordSource([{ line: 1, record: { format: 'language-modeling', style: 'standard', text: 'x' } }]);
    assert.equal(source.length, 1);
    assert.equal(source.get(0).line, 1);
    assert.throws(() => source.get(1), RangeError);
  });
});
