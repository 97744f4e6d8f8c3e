import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../command';
import { startLocalServices, type LocalServiceGroup } from '../local-services';
import { captureIO } from '../test-io';
import { scoreCommand } from './score';

describe('posttrain score', { timeout: 120_000 }, () => {
  let group: LocalServiceGroup;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'posttrain-score-'));
    await writeFile(join(dir, 'rules.yaml'), [
      '- { name: correct, weight: 1, rule: numeric_match, params: { extraction: { mode: after_marker, pattern: "Answer:" } } }',
      '- { name: format, weight: 0.25, rule: regex, params: { pattern: "Answer: -?\\\\d+$" } }',
      '',
    ].join('\n'));
    await writeFile(join(dir, 'data.jsonl'), [
      JSON.stringify({ id: 'right', prompt: 'What is 12+7?', completion: '12+7=19\nAnswer: 19', answer: '19' }),
      '',
      JSON.stringify({ prompt: [{ role: 'user', content: 'What is 12+7?' }], completion: [{ role: 'assistant', content: 'Answer: 18' }], ground_truth: 19 }),
      '',
    ].join('\n'));
    group = await startLocalServices([{ name: 'reward', label: 'reward', args: [] }], { host: '127.0.0.1', startupTimeoutMs: 60_000 });
  });
  after(async () => group?.stop());

  test('prints each item\'s reward and components (hand-computed), then the mean', async () => {
    const io = captureIO();
    const code = await scoreCommand.run(['--addr', group.services[0].address, '--rules', join(dir, 'rules.yaml'), '--data', join(dir, 'data.jsonl'), '--batch', '1'], io);
    assert.equal(code, 0, io.err());
    // right: 1 * 1 + 0.25 * 1 = 1.25; line 3 (wrong answer, well formatted): 0 + 0.25 = 0.25; mean 0.75
    assert.equal(io.out(), 'right\treward 1.2500\tcorrect=1.0000 format=1.0000\nline 3\treward 0.2500\tcorrect=0.0000 format=1.0000\nmean reward 0.7500 over 2 items\n');
    const json = captureIO();
    await scoreCommand.run(['--addr', group.services[0].address, '--rules', join(dir, 'rules.yaml'), '--data', join(dir, 'data.jsonl'), '--json'], json);
    assert.deepEqual(JSON.parse(json.out().split('\n')[0]), { id: 'right', reward: 1.25, components: { correct: { value: 1, weighted: 1 }, format: { value: 1, weighted: 0.25 } } });
  });

  test('bad rules and bad data lines are usage errors naming the file, line and field', async () => {
    await writeFile(join(dir, 'bad-rules.json'), JSON.stringify([{ rule: 'regexp' }]));
    await writeFile(join(dir, 'bad.jsonl'), JSON.stringify({ prompt: 'p', completion: 'c' }) + '\n' + JSON.stringify({ prompt: 'p', completion: 7 }) + '\n');
    const addr = group.services[0].address;
    const cases: [string[], RegExp][] = [
      [['--addr', addr, '--rules', join(dir, 'bad-rules.json'), '--data', join(dir, 'data.jsonl')], /bad-rules\.json: rewards\[0\]\.rule: .*"regexp"/],
      [['--addr', addr, '--rules', join(dir, 'rules.yaml'), '--data', join(dir, 'bad.jsonl')], /bad\.jsonl:2: field "completion": expected a string or a list of \{role, content\} messages, got 7/],
      [['--rules', join(dir, 'rules.yaml'), '--data', join(dir, 'data.jsonl')], /missing --addr/],
      [['--addr', addr, '--rules', join(dir, 'nope.yaml'), '--data', join(dir, 'data.jsonl')], /--rules .*nope\.yaml: cannot read/],
    ];
    for (const [argv, re] of cases) await assert.rejects(scoreCommand.run(argv, captureIO()), (e: unknown) => e instanceof UsageError && re.test(e.message), String(re));
  });
});
