import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkDataFile } from '@posttrain/data';
import { writeTaskFiles, type TaskManifest } from './write-task-files';

const SMALL = { seed: 9, sftSizes: [30, 80], corpusSize: 300, preferenceSize: 60, promptsSize: 60, evalSize: 40 };

/** What libs/data must detect in each kind of file: the TRL format and style the trainer will read it in. */
const EXPECTED_SCHEMA = {
  corpus: ['language-modeling', 'standard'],
  sft: ['language-modeling', 'conversational'],
  preference: ['preference', 'conversational'],
  prompts: ['prompt-only', 'conversational'],
  prose: ['prompt-only', 'standard'],
} as const;

describe('writeTaskFiles', () => {
  test('every file passes libs/data validation in its intended format; the manifest counts and hashes them', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'task-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const manifest = await writeTaskFiles(dir, SMALL);
    const onDisk = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as TaskManifest;
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(manifest)));
    assert.equal(onDisk.seed, 9);
    assert.deepEqual(onDisk.options.sftSizes, [30, 80]);
    assert.equal(onDisk.reward[0].rule, 'numeric_match');
    assert.deepEqual(
      (await readdir(dir)).sort(),
      ['corpus-eval.jsonl', 'corpus.jsonl', 'manifest.json', 'preference-correct-eval.jsonl', 'preference-correct.jsonl', 'preference-eval.jsonl', 'preference.jsonl', 'prompts-eval.jsonl', 'prompts.jsonl', 'prose-eval.jsonl', 'sft-30.jsonl', 'sft-80.jsonl', 'sft-eval.jsonl'],
    );
    for (const f of manifest.files) {
      const path = join(dir, f.name);
      const text = await readFile(path, 'utf8');
      assert.equal(f.sha256, createHash('sha256').update(text).digest('hex'), f.name);
      assert.equal(f.bytes, Buffer.byteLength(text), f.name);
      const report = await checkDataFile(path);
      assert.equal(report.ok, true, `${f.name}: ${JSON.stringify(report.problems.slice(0, 3))}`);
      assert.deepEqual([report.valid, report.invalid, report.blank, report.lines], [f.records, 0, 0, f.records], f.name);
      assert.deepEqual([report.schema?.format, report.schema?.style], EXPECTED_SCHEMA[f.kind], f.name);
    }
    const expectedRecords: Record<string, number> = { 'corpus.jsonl': 300, 'corpus-eval.jsonl': 40, 'sft-30.jsonl': 30, 'sft-80.jsonl': 80, 'sft-eval.jsonl': 40, 'preference.jsonl': 60, 'preference-eval.jsonl': 40, 'preference-correct.jsonl': 60, 'preference-correct-eval.jsonl': 40, 'prompts.jsonl': 60, 'prompts-eval.jsonl': 40, 'prose-eval.jsonl': 40 };
    assert.deepEqual(Object.fromEntries(manifest.files.map((f) => [f.name, f.records])), expectedRecords);
  });

  test('the prompts carry their answers as libs/data ground truth', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'task-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeTaskFiles(dir, SMALL);
    // With the ground-truth column named, a line without it would be a problem: none is.
    const report = await checkDataFile(join(dir, 'prompts-eval.jsonl'), { groundTruthField: 'answer' });
    assert.equal(report.ok, true, JSON.stringify(report.problems.slice(0, 3)));
  });

  test('same options into two folders: byte-identical files, manifest included', async (t) => {
    const a = await mkdtemp(join(tmpdir(), 'task-a-'));
    const b = await mkdtemp(join(tmpdir(), 'task-b-'));
    t.after(() => Promise.all([rm(a, { recursive: true, force: true }), rm(b, { recursive: true, force: true })]));
    await writeTaskFiles(a, SMALL);
    await writeTaskFiles(b, SMALL);
    for (const name of await readdir(a)) assert.ok((await readFile(join(a, name))).equals(await readFile(join(b, name))), name);
  });
});
