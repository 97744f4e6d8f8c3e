import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../main';
import { captureIO } from '../test-io';

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO();
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe('posttrain runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-runs-'));
  before(() => {
    // Two runs as the stage runners leave them: one finished (model/), one stopped after a checkpoint.
    const a = join(dir, 'sft-done');
    mkdirSync(join(a, 'model'), { recursive: true });
    mkdirSync(join(a, 'checkpoints', 'step-4'), { recursive: true });
    writeFileSync(join(a, 'checkpoints', 'step-4', 'trainer_state.json'), '{}');
    writeFileSync(join(a, 'config.json'), JSON.stringify({ stage: 'sft' }));
    writeFileSync(join(a, 'model', 'config.json'), '{}');
    writeFileSync(join(a, 'metrics.jsonl'), [{ step: 2, time: 1, 'train/loss': 2.5 }, { step: 4, time: 2, 'train/loss': 1.25 }].map((r) => JSON.stringify(r)).join('\n') + '\n');
    writeFileSync(join(a, 'report.html'), '<html></html>');
    const b = join(dir, 'grpo-stopped');
    for (const step of [10, 5]) {
      mkdirSync(join(b, 'checkpoints', `step-${step}`), { recursive: true });
      writeFileSync(join(b, 'checkpoints', `step-${step}`, 'trainer_state.json'), '{}');
    }
    writeFileSync(join(b, 'config.json'), JSON.stringify({ algorithm: 'grpo' }));
    writeFileSync(join(b, 'metrics.jsonl'), JSON.stringify({ step: 12, time: 3, 'objective/scores': 0.5 }) + '\n');
    mkdirSync(join(dir, 'not-a-run'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('list shows every run with its stage, state and last step', async () => {
    const r = await cli(['runs', 'list', '--dir', dir, '--json']);
    assert.equal(r.code, 0, r.err);
    const runs = JSON.parse(r.out) as { id: string; stage: string; state: string; step: number; checkpoints: number[] }[];
    const byId = Object.fromEntries(runs.map((x) => [x.id, x]));
    assert.deepEqual(Object.keys(byId).sort(), ['grpo-stopped', 'sft-done']);
    assert.deepEqual([byId['sft-done'].stage, byId['sft-done'].state, byId['sft-done'].step], ['sft', 'completed', 4]);
    assert.deepEqual([byId['grpo-stopped'].stage, byId['grpo-stopped'].state, byId['grpo-stopped'].checkpoints], ['grpo', 'stopped (resumable)', [5, 10]]);
  });

  test('show prints the checkpoints, the last metrics and the report', async () => {
    const r = await cli(['runs', 'show', 'sft-done', '--dir', dir]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /checkpoints:\s+step-4/);
    assert.match(r.out, /last metrics: train\/loss=1\.250/);
    assert.match(r.out, /report:\s+.*sft-done\/report\.html/);
  });

  test('errors name what is missing', async () => {
    const cases: [string[], RegExp][] = [
      [['runs', 'show', 'nope', '--dir', dir], /run "nope" not found/],
      [['runs', 'show'], /missing ID/],
      [['runs', 'list', '--dir', join(dir, 'absent')], /--dir: ".*absent" does not exist/],
      [['runs', 'cancel', 'x'], /missing required option --addr/],
    ];
    for (const [argv, re] of cases) {
      const r = await cli(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, re);
    }
  });
});
