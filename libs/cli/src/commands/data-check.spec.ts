import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli } from '../main';
import { captureIO } from '../test-io';

const fixtures = join(__dirname, '..', '..', '..', 'data', 'fixtures');

describe('posttrain data check', () => {
  test('reports a malformed line, a missing field and a wrong type with their line numbers, and exits 1', async () => {
    const io = captureIO();
    const code = await runCli(['data', 'check', join(fixtures, 'bad.jsonl')], io);
    assert.equal(code, 1);
    const out = io.out();
    assert.match(out, /standard prompt-completion/);
    assert.match(out, /lines:\s+6 \(valid 2, invalid 3, blank 1\)/);
    assert.match(out, /bad\.jsonl:2: expected one JSON object per line, got malformed JSON/);
    assert.match(out, /bad\.jsonl:4: field "completion": expected a non-empty string .* got nothing \(field missing\)/);
    assert.match(out, /bad\.jsonl:5: field "completion": expected a non-empty string .* got number 8/);
  });

  test('a clean file exits 0 and --json gives the counts', async () => {
    const io = captureIO();
    const code = await runCli(['data', 'check', join(fixtures, 'preference-implicit.jsonl'), '--json'], io);
    const report = JSON.parse(io.out());
    assert.equal(code, 0, io.out() + io.err());
    assert.equal(report.ok, true);
    assert.equal(report.invalid, 0);
    assert.ok(report.valid > 0);
  });

  test('usage errors exit 2 and say what is wrong', async () => {
    const cases: [string[], RegExp][] = [
      [['data', 'check'], /missing FILE/],
      [['data', 'check', join(fixtures, 'bad.jsonl'), '--format', 'nope'], /--format: got "nope", expected one of auto, language-modeling/],
      [['data', 'check', '/definitely/not/here.jsonl'], /cannot read \/definitely\/not\/here\.jsonl: no such file/],
      [['data', 'chek'], /"data chek" is not a command; did you mean data check/],
    ];
    for (const [argv, re] of cases) {
      const io = captureIO();
      assert.equal(await runCli(argv, io), 2, argv.join(' '));
      assert.match(io.err(), re);
    }
  });
});
