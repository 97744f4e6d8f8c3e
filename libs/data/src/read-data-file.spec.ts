import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDataConfig } from './data-config';
import { DataError } from './data-error';
import { createReadSummary, loadDataFile, readDataFile } from './read-data-file';
import { readJsonlLines } from './read-jsonl-lines';

const fixture = (name: string) => join(__dirname, '..', 'fixtures', name);
const tmp = mkdtempSync(join(tmpdir(), 'posttrain-data-'));
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

describe('readJsonlLines', () => {
  test('offsets and lengths locate every line, across chunk boundaries, with CRLF, a BOM and no final newline', async () => {
    const text = '\uFEFF{"text":"é"}\r\n\n{"text":"ab"}\n{"text":"\u{1F600}"}';
    const file = join(tmp, 'lines.jsonl');
    writeFileSync(file, text);
    const bytes = readFileSync(file);
    for (const chunk of [1, 2, 3, 5, 1 << 16]) {
      const lines = [];
      for await (const line of readJsonlLines(file, chunk)) lines.push(line);
      assert.deepEqual(
        lines.map((l) => l.text),
        ['{"text":"é"}', '', '{"text":"ab"}', '{"text":"\u{1F600}"}'],
        `chunk ${chunk}`,
      );
      assert.deepEqual(lines.map((l) => l.line), [1, 2, 3, 4]);
      // By hand: BOM 3 bytes + {"text":"é"} 13 bytes (é is 2) + \r = 17 bytes, then \n; "" at 18; line 3 at 19 (13 bytes), \n; line 4 at 33.
      assert.deepEqual(lines.map((l) => [l.offset, l.byteLength]), [[0, 17], [18, 0], [19, 13], [33, 15]]);
      for (const l of lines) {
        assert.equal(bytes.subarray(l.offset + l.byteLength, l.offset + l.byteLength + 1).toString(), l.line === 4 ? '' : '\n');
      }
    }
  });

  test('invalid UTF-8 gives a null text instead of replacement characters', async () => {
    const file = join(tmp, 'latin1.jsonl');
    writeFileSync(file, Buffer.from([0x7b, 0xe9, 0x7d, 0x0a]));
    const lines = [];
    for await (const line of readJsonlLines(file)) lines.push(line);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].text, null);
  });
});

describe('loadDataFile: every format from fixtures', () => {
  const config = parseDataConfig({});
  const cases: [string, string, string, unknown][] = [
    ['lm-text.jsonl', 'language-modeling', 'standard', { format: 'language-modeling', style: 'standard', text: '12+7=19' }],
    [
      'lm-messages.jsonl',
      'language-modeling',
      'conversational',
      { format: 'language-modeling', style: 'conversational', messages: [{ role: 'system', content: 'Be brief.' }, user('2+2?'), assistant('4')] },
    ],
    ['prompt-completion.jsonl', 'prompt-completion', 'standard', { format: 'prompt-completion', style: 'standard', prompt: '12+7=', completion: '19' }],
    [
      'prompt-completion-chat.jsonl',
      'prompt-completion',
      'conversational',
      { format: 'prompt-completion', style: 'conversational', prompt: [user('12+7?')], completion: [assistant('19')] },
    ],
    ['preference.jsonl', 'preference', 'standard', { format: 'preference', style: 'standard', prompt: '12+7=', chosen: '19', rejected: '18' }],
    [
      'preference-chat.jsonl',
      'preference',
      'conversational',
      { format: 'preference', style: 'conversational', prompt: [user('12+7?')], chosen: [assistant('19')], rejected: [assistant('18')] },
    ],
    [
      'preference-implicit.jsonl',
      'implicit-preference',
      'standard',
      { format: 'implicit-preference', style: 'standard', prompt: 'The sky is ', chosen: 'blue.', rejected: 'green.' },
    ],
    [
      'preference-implicit-chat.jsonl',
      'implicit-preference',
      'conversational',
      {
        format: 'implicit-preference',
        style: 'conversational',
        prompt: [user('What color is the sky?')],
        chosen: [assistant('It is blue.')],
        rejected: [assistant('It is green.')],
      },
    ],
    ['prompt-only.jsonl', 'prompt-only', 'standard', { format: 'prompt-only', style: 'standard', prompt: '12+7=', groundTruth: '19' }],
    [
      'prompt-only-chat.jsonl',
      'prompt-only',
      'conversational',
      { format: 'prompt-only', style: 'conversational', prompt: [user('12+7?')], groundTruth: '19' },
    ],
  ];
  for (const [name, format, style, first] of cases) {
    test(`${name}: ${style} ${format}`, async () => {
      const { lines, summary } = await loadDataFile(fixture(name), config);
      assert.equal(summary.invalid, 0, JSON.stringify(summary.problems));
      assert.equal(summary.schema?.format, format);
      assert.equal(summary.schema?.style, style);
      assert.equal(summary.schema?.decidedBy, 'line 1');
      assert.equal(lines.length, summary.valid);
      assert.ok(lines.length >= 1);
      assert.deepEqual(lines[0].record, first);
      assert.equal(lines[0].line, 1);
    });
  }

  test('implicit conversational line 2 keeps system and user messages in the prompt', async () => {
    const { lines } = await loadDataFile(fixture('preference-implicit-chat.jsonl'), config);
    assert.deepEqual(lines[1].record, {
      format: 'implicit-preference',
      style: 'conversational',
      prompt: [{ role: 'system', content: 'Be brief.' }, user('2+2?')],
      chosen: [assistant('4')],
      rejected: [assistant('5')],
    });
  });

  test('prompt-only ground truth: a number becomes a string, a missing one null', async () => {
    const { lines } = await loadDataFile(fixture('prompt-only.jsonl'), config);
    assert.deepEqual(
      lines.map((l) => (l.record.format === 'prompt-only' ? l.record.groundTruth : 'wrong format')),
      ['19', '12', null],
    );
  });
});

describe('error policy', () => {
  test("'fail' throws at the first bad line with file, line and problem", async () => {
    const config = parseDataConfig({ errorPolicy: 'fail' });
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const { line } of readDataFile(fixture('bad.jsonl'), config)) seen.push(line);
      })(),
      (e: Error) => e instanceof DataError && e.problem.line === 2 && e.message.startsWith(`${fixture('bad.jsonl')}:2: expected one JSON object per line, got malformed JSON`),
    );
    assert.deepEqual(seen, [1]);
  });

  test("'skip' yields the good lines and counts and reports every bad one", async () => {
    const config = parseDataConfig({ errorPolicy: 'skip' });
    const summary = createReadSummary('bad.jsonl');
    const seen: number[] = [];
    for await (const { line } of readDataFile(fixture('bad.jsonl'), config, summary)) seen.push(line);
    assert.deepEqual(seen, [1, 6]);
    assert.deepEqual([summary.lines, summary.valid, summary.invalid, summary.blank], [6, 2, 3, 1]);
    assert.deepEqual(
      summary.problems.map((p) => [p.line, p.field]),
      [
        [2, null],
        [4, 'completion'],
        [5, 'completion'],
      ],
    );
    assert.equal(summary.problems[1].got, 'nothing (field missing)');
    assert.equal(summary.problems[2].got, 'number 8');
  });

  test('the format is decided by the first valid line, not a bad first line', async () => {
    const file = join(tmp, 'bad-first.jsonl');
    writeFileSync(file, '{"prompt": 3}\n{"text": "hello"}\n{"prompt": "a", "completion": "b"}\n');
    const { lines, summary } = await loadDataFile(file, parseDataConfig({ errorPolicy: 'skip' }));
    assert.equal(summary.schema?.format, 'language-modeling');
    assert.equal(summary.schema?.decidedBy, 'line 2');
    assert.deepEqual(lines.map((l) => l.line), [2]);
    assert.deepEqual(summary.problems.map((p) => p.line), [1, 3]);
    assert.match(summary.problems[1].expected, /standard language-modeling format, decided by line 2/);
  });

  test('a config format override reads a prompt-completion file as prompts', async () => {
    const { lines, summary } = await loadDataFile(fixture('prompt-completion.jsonl'), parseDataConfig({ format: 'prompt-only' }));
    assert.equal(summary.schema?.decidedBy, 'the config');
    assert.deepEqual(lines[1].record, { format: 'prompt-only', style: 'standard', prompt: '3*4=', groundTruth: null });
  });
});
