import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryRunSource, type DashboardServer } from '@posttrain/dashboard';
import type { PipelineEvent } from '@posttrain/experiment';
import { RunState } from '@posttrain/proto';
import { captureIO } from './test-io';
import { demoCommand } from './commands/demo';
import { pipelineFeed, startPipelineDashboard } from './pipeline-dashboard';

const HOSTILE = '<img src=x onerror=alert(1)>';

/** Reads /events until `count` frames of `event` arrived; returns every frame by then. */
async function frames(url: string, event: string, count: number): Promise<{ event: string; data: unknown }[]> {
  const ac = new AbortController();
  const res = await fetch(`${url}events`, { signal: ac.signal });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let raw = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      raw += value;
      const got = raw.split('\n\n').slice(0, -1).flatMap((b) => {
        const ev = /^event: (.*)$/m.exec(b);
        const data = /^data: (.*)$/m.exec(b);
        return ev && data ? [{ event: ev[1], data: JSON.parse(data[1]) as unknown }] : [];
      });
      if (got.filter((f) => f.event === event).length >= count) return got;
    }
    throw new Error(`stream ended before ${count} ${event} events: ${raw}`);
  } finally {
    ac.abort();
  }
}

describe('the demo dashboard: pipeline events as runs', () => {
  const source = new MemoryRunSource();
  let dash: DashboardServer;
  after(() => dash?.close());

  test('stages become runs with their steps, samples and end state, served at /api/runs and /events', async () => {
    dash = await startPipelineDashboard(source, 'demo', '127.0.0.1', 0);
    assert.match(dash.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const feed = pipelineFeed(source);
    const events: PipelineEvent[] = [
      { type: 'stage-start', stage: 'sft-48', title: 'SFT on 48 examples', index: 1, total: 3 },
      { type: 'step', stage: 'sft-48', step: 1, totalSteps: 2, metrics: { 'train/loss': 2 } },
      { type: 'step', stage: 'sft-48', step: 2, totalSteps: 2, metrics: { 'train/loss': 1 } },
      { type: 'stage-end', stage: 'sft-48', title: 'SFT on 48 examples', seconds: 1, metrics: { steps: 2 } },
      { type: 'stage-start', stage: 'grpo-sft', title: 'GRPO from SFT', index: 2, total: 3 },
      { type: 'step', stage: 'grpo-sft', step: 1, totalSteps: 4, metrics: { 'objective/scores': 0.5 }, samples: [{ prompt: HOSTILE, completion: '7', reward: 1 }] },
    ];
    for (const e of events) feed.onEvent(e);

    const runs = (await (await fetch(`${dash.url}api/runs`)).json()) as { runs: { id: string; name: string; stage: string; state: string; lastStep: number; totalSteps: number }[] };
    assert.deepEqual(runs.runs.map((r) => [r.id, r.name, r.stage, r.state, r.lastStep, r.totalSteps]), [
      ['grpo-sft', 'GRPO from SFT', 'grpo-sft', 'RUNNING', 1, 4],
      ['sft-48', 'SFT on 48 examples', 'sft-48', 'SUCCEEDED', 2, 2],
    ]);
    const got = await frames(dash.url, 'samples', 1);
    const metrics = got.filter((f) => f.event === 'metrics').map((f) => f.data as { runId: string; step: number; values: Record<string, number> });
    assert.deepEqual(metrics.map((m) => [m.runId, m.step]).sort(), [['grpo-sft', 1], ['sft-48', 1], ['sft-48', 2]]);
    assert.deepEqual((got.find((f) => f.event === 'samples')!.data as { runId: string; samples: unknown[] }).samples, [{ prompt: HOSTILE, completion: '7', reward: 1 }]);

    const page = await (await fetch(dash.url)).text();
    assert.match(page, /<title>posttrain demo<\/title>/);

    // The pipeline stopped inside a stage: that run ends FAILED with the reason.
    feed.stop(RunState.FAILED, 'sampler died');
    const after = (await (await fetch(`${dash.url}api/runs`)).json()) as { runs: { id: string; state: string; errorMessage: string }[] };
    assert.deepEqual(after.runs[0], { ...after.runs[0], id: 'grpo-sft', state: 'FAILED', errorMessage: 'sampler died' });
    assert.throws(() => source.start('sft-48', 'sft'), /run "sft-48" already exists/);
  });

  test('the dashboard flags are validated, naming the flag, the value and what was expected', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'demo-flags-')), 'run');
    await assert.rejects(demoCommand.run(['--quick', '--out', out, '--no-dashboard', '--dashboard-port', '8080'], captureIO()), /--dashboard-port: got 8080 with --no-dashboard, expected one or the other/);
    await assert.rejects(demoCommand.run(['--quick', '--out', out, '--dashboard-port', '70000'], captureIO()), /--dashboard-port.*70000/);
  });
});
