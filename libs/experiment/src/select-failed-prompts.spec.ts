import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompleteFn } from './evaluate-answers';
import type { AnswerItem } from './read-eval-data';
import { selectFailedPrompts, writeFailedPrompts, writeSelectedLines } from './select-failed-prompts';

// Lines 1-6 of a prompts file; the stub answers 2, 3 and 5 wrong (3 with the right number but no Answer: line).
const items: AnswerItem[] = [1, 2, 3, 4, 5, 6].map((line) => ({ line, prompt: [{ role: 'user', content: `q${line}` }], answer: String(line * 10) }));
const replies: Record<string, string> = { q1: 'Answer: 10', q2: 'Answer: 21', q3: 'it is 30', q4: 'Answer: 40', q5: 'Answer: 0', q6: 'Answer: 60' };

function stub(calls: number[]): CompleteFn {
  return async (prompts) => {
    calls.push(prompts.length);
    return prompts.map((p) => replies[typeof p === 'string' ? p : p[0].content]);
  };
}

describe('selectFailedPrompts', () => {
  test('keeps exactly the prompts answered wrong, in file order, scanning every prompt without a limit', async () => {
    const calls: number[] = [];
    const progress: [number, number][] = [];
    const got = await selectFailedPrompts(items, stub(calls), { batchSize: 4, onProgress: (s, f) => progress.push([s, f]) });
    assert.deepEqual(got, { lines: [2, 3, 5], scanned: 6 });
    assert.deepEqual(calls, [4, 2]);
    assert.deepEqual(progress, [[4, 2], [6, 3]]);
  });

  test('stops at the batch where `want` failures are found and keeps only `want`', async () => {
    const calls: number[] = [];
    const got = await selectFailedPrompts(items, stub(calls), { batchSize: 2, want: 2 });
    // batch [1,2] -> 1 failure, batch [3,4] -> 2: done; prompts 5 and 6 are never completed
    assert.deepEqual(got, { lines: [2, 3], scanned: 4 });
    assert.deepEqual(calls, [2, 2]);
    const one = await selectFailedPrompts(items, stub([]), { batchSize: 6, want: 1 });
    assert.deepEqual(one, { lines: [2], scanned: 6 });
  });

  test('a model that answers everything right keeps nothing; bad options are named', async () => {
    const right: CompleteFn = async (prompts) => prompts.map((p) => `Answer: ${Number(String(typeof p === 'string' ? p : p[0].content).slice(1)) * 10}`);
    assert.deepEqual(await selectFailedPrompts(items, right), { lines: [], scanned: 6 });
    await assert.rejects(selectFailedPrompts(items, right, { want: 0 }), /want: got 0, expected a positive integer/);
    await assert.rejects(selectFailedPrompts(items, right, { batchSize: 1.5 }), /batchSize: got 1.5/);
  });
});

describe('writeSelectedLines', () => {
  test('copies the chosen lines byte for byte in file order; a line outside the file is an error naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'select-'));
    const from = join(dir, 'prompts.jsonl');
    writeFileSync(from, '{"prompt":"a","answer":"1"}\n{"prompt":"b", "answer":"2"}\n{"prompt":"ü","answer":"3"}\n');
    const to = join(dir, 'kept.jsonl');
    await writeSelectedLines(from, [3, 2], to);
    assert.equal(readFileSync(to, 'utf8'), '{"prompt":"b", "answer":"2"}\n{"prompt":"ü","answer":"3"}\n');
    await assert.rejects(writeSelectedLines(from, [4], to), /prompts\.jsonl: line 4 is not a record of the file/);
    await assert.rejects(writeSelectedLines(from, [0], to), /line 0 is not a record/);
  });

  test('creates the directory it writes into (the run directory a stage has not made yet)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'select-'));
    const from = join(dir, 'prompts.jsonl');
    writeFileSync(from, '{"prompt":"a","answer":"1"}\n');
    const to = join(dir, 'seed-1', 'runs', 'kept.jsonl');
    await writeSelectedLines(from, [1], to);
    assert.equal(readFileSync(to, 'utf8'), '{"prompt":"a","answer":"1"}\n');
  });
});

describe('writeFailedPrompts', () => {
  const file = (dir: string, rows: string[]): string => {
    const from = join(dir, 'prompts.jsonl');
    writeFileSync(from, rows.join('\n') + '\n');
    return from;
  };
  // Lines 1-4: the stub answers q2 and q3 wrong (see `replies` above).
  const rows = [1, 2, 3, 4].map((n) => `{"prompt":[{"role":"user","content":"q${n}"}], "answer":"${n * 10}"}`);

  test('writes the failed lines of the file byte for byte and says how many it read, scanned and kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'failed-'));
    const to = join(dir, 'kept.jsonl');
    const got = await writeFailedPrompts(file(dir, rows), stub([]), to, { batchSize: 2 });
    assert.deepEqual(got, { lines: [2, 3], scanned: 4, pool: 4, written: true });
    assert.equal(readFileSync(to, 'utf8'), `${rows[1]}\n${rows[2]}\n`);
  });

  test('writes nothing when no prompt fails; a file without answers is an error naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'failed-'));
    const to = join(dir, 'kept.jsonl');
    const got = await writeFailedPrompts(file(dir, [rows[0], rows[3]]), stub([]), to);
    assert.deepEqual(got, { lines: [], scanned: 2, pool: 2, written: false });
    assert.equal(existsSync(to), false);
    const prefs = join(dir, 'prefs.jsonl');
    writeFileSync(prefs, '{"prompt":"p","chosen":"a","rejected":"b"}\n');
    await assert.rejects(writeFailedPrompts(prefs, stub([]), to), /prefs\.jsonl: expected prompts with answers/);
  });
});
