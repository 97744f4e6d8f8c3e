import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkDataFile, formatDataCheckReport } from './check-data-file';

const fixture = (name: string) => join(__dirname, '..', 'fixtures', name);

describe('checkDataFile', () => {
  test('reports a malformed line, a missing field and a wrong type with their line numbers', async () => {
    const report = await checkDataFile(fixture('bad.jsonl'));
    assert.equal(report.ok, false);
    assert.deepEqual([report.lines, report.valid, report.invalid, report.blank], [6, 2, 3, 1]);
    assert.equal(report.schema?.format, 'prompt-completion');
    const text = formatDataCheckReport(report);
    const file = fixture('bad.jsonl');
    assert.match(text, /PROBLEMS FOUND/);
    assert.match(text, /format: {2}standard prompt-completion \(decided by line 1\)/);
    assert.match(text, /lines: {3}6 \(valid 2, invalid 3, blank 1\)/);
    assert.ok(text.includes(`${file}:2: expected one JSON object per line, got malformed JSON`), text);
    assert.ok(text.includes(`${file}:4: field "completion": expected a non-empty string`), text);
    assert.ok(text.includes(`${file}:5: field "completion": expected a non-empty string (standard prompt-completion format, decided by line 1), got number 8`), text);
  });

  test('a clean file is ok', async () => {
    const report = await checkDataFile(fixture('preference-implicit-chat.jsonl'));
    assert.equal(report.ok, true);
    assert.equal(report.problems.length, 0);
    assert.match(formatDataCheckReport(report), /OK\n {2}format: {2}conversational implicit-preference/);
  });

  test('an empty file is not ok: nothing to train on', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'posttrain-check-')), 'empty.jsonl');
    writeFileSync(file, '\n\n');
    const report = await checkDataFile(file);
    assert.equal(report.ok, false);
    assert.equal(report.blank, 2);
    assert.match(formatDataCheckReport(report), /format: {2}unknown \(no valid line\)[\s\S]*no valid record/);
  });

  test('a format given on the command line is used and validated', async () => {
    const report = await checkDataFile(fixture('prompt-completion.jsonl'), { format: 'preference' });
    assert.equal(report.ok, false);
    assert.equal(report.invalid, 2);
    assert.equal(report.problems[0].field, 'chosen');
    await assert.rejects(checkDataFile(fixture('lm-text.jsonl'), { format: 'sft' as never }), /data check\.format: expected one of/);
  });

  test('a missing file rejects', async () => {
    await assert.rejects(checkDataFile(fixture('no-such-file.jsonl')), /ENOENT/);
  });
});
