import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PipelineResult } from '@posttrain/experiment';
import { captureIO } from '../test-io';
import { experimentCommand } from './experiment';

describe('posttrain experiment --quick', () => {
  test('runs the SFT sweep (every size fine-tuned and evaluated) and plots accuracy against SFT examples', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'experiment-')), 'run');
    const io = captureIO();
    assert.equal(await experimentCommand.run(['--quick', '--out', out], io), 0, io.err());
    const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as PipelineResult;
    assert.equal(r.plan.name, 'experiment');
    assert.deepEqual(r.stages.map((s) => s.stage), ['task', 'pretrain', 'eval-base', 'sft-16', 'eval-sft-16', 'sft-48', 'eval-sft-48', 'rm', 'dpo', 'eval-dpo', 'grpo-sft', 'grpo-base', 'eval-grpo']);
    assert.deepEqual(r.models.filter((m) => m.model.startsWith('sft-')).map((m) => m.sftExamples), [16, 48]);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /"sft-sweep\/accuracy"/);
    assert.match(io.out(), /claim 1: /);
  });
});
