import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEvalData } from './read-eval-data';

const dir = mkdtempSync(join(tmpdir(), 'eval-data-'));
function file(name: string, lines: string[]): string {
  const p = join(dir, name);
  writeFileSync(p, lines.join('\n') + '\n');
  return p;
}

describe('readEvalData', () => {
  test('prompt-only records with answers, line numbers kept across blank lines', async () => {
    const p = file('prompts.jsonl', [JSON.stringify({ prompt: [{ role: 'user', content: '1+2=?' }], answer: '3' }), '', JSON.stringify({ prompt: [{ role: 'user', content: 'q' }], answer: '4' })]);
    const d = await readEvalData(p);
    assert.equal(d.kind, 'answers');
    if (d.kind !== 'answers') return;
    assert.deepEqual(d.items.map((i) => [i.line, i.answer]), [[1, '3'], [3, '4']]);
  });

  test('preference pairs', async () => {
    const p = file('pairs.jsonl', [JSON.stringify({ prompt: 'q', chosen: 'a', rejected: 'b' })]);
    const d = await readEvalData(p);
    assert.equal(d.kind, 'preferences');
  });

  test('errors name the file, the line and the problem', async () => {
    await assert.rejects(readEvalData(join(dir, 'nope.jsonl')), /nope\.jsonl: no such file/);
    const sft = file('sft.jsonl', [JSON.stringify({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] })]);
    await assert.rejects(readEvalData(sft), /sft\.jsonl:1: a language-modeling record; expected prompt-only records with answers/);
    const noAnswer = file('no-answer.jsonl', [JSON.stringify({ prompt: 'q', answer: '1' }), JSON.stringify({ prompt: 'r' })]);
    await assert.rejects(readEvalData(noAnswer), /no-answer\.jsonl:2: field "answer": missing or empty/);
    const bad = file('bad.jsonl', ['{"prompt": "q", "answer": "1"}', '{not json']);
    await assert.rejects(readEvalData(bad), (e: Error) => /bad\.jsonl/.test(e.message) && /2/.test(e.message) && /JSON/.test(e.message));
    const empty = file('empty.jsonl', ['']);
    await assert.rejects(readEvalData(empty), /no records/);
  });
});
