import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { getBackendInfo, initBackend } from '@posttrain/backend';
import { pipelinePlan } from './pipeline-plan';
import { PipelineCancelledError } from './pipeline-types';
import { runPipeline } from './run-pipeline';
import { StageLanes } from './stage-lanes';
import type { FailedPromptsJob } from './stage-jobs';

const BASE = resolve(__dirname, '../../../models/tiny-arith-base');

/** A promise and its resolver. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolveIt!: () => void;
  const promise = new Promise<void>((r) => (resolveIt = r));
  return { promise, resolve: resolveIt };
}

describe('StageLanes', () => {
  before(async () => {
    if (getBackendInfo() === null) await initBackend({ logger: { info: () => undefined } });
  });

  test('at most `lanes` holders at once; the next waiting, first come first served, gets a freed lane', async () => {
    const lanes = new StageLanes({ lanes: 2 });
    const gates = [deferred(), deferred(), deferred(), deferred()];
    const log: string[] = [];
    const runs = gates.map((g, i) =>
      lanes.hold(async () => {
        log.push(`start ${i}`);
        await g.promise;
        log.push(`end ${i}`);
      }),
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['start 0', 'start 1']);
    gates[1].resolve();
    await runs[1];
    await new Promise((r) => setImmediate(r));
    // Lane of 1 freed: 2 (queued before 3) takes it.
    assert.deepEqual(log, ['start 0', 'start 1', 'end 1', 'start 2']);
    gates[0].resolve();
    await runs[0];
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log.slice(4), ['end 0', 'start 3']);
    gates[2].resolve();
    gates[3].resolve();
    await Promise.all(runs);
    assert.deepEqual(log.slice(6).sort(), ['end 2', 'end 3']);
    await lanes.close();
  });

  test('a holder that throws frees its lane', async () => {
    const lanes = new StageLanes({ lanes: 1 });
    await assert.rejects(lanes.hold(() => Promise.reject(new Error('boom'))), /boom/);
    assert.equal(await lanes.hold(() => Promise.resolve(7)), 7);
  });

  test('refuses a lane count that is not a positive integer', () => {
    assert.throws(() => new StageLanes({ lanes: 0 }), /lanes: got 0, expected a positive integer/);
    assert.throws(() => new StageLanes({ lanes: 1.5 }), /lanes: got 1.5/);
  });

  test('a job in a worker thread gives what it gives in this thread; a failing job rejects with its error, and the worker serves the next', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanes-'));
    // Three RL prompts in the chat format: the base model (never shown a chat turn) answers them wrong.
    const prompts = join(dir, 'prompts.jsonl');
    const problems: [string, string][] = [['12+30', '42'], ['45+13', '58'], ['70-21', '49']];
    writeFileSync(prompts, problems.map(([q, a]) => JSON.stringify({ prompt: [{ role: 'user', content: `${q}=?` }], answer: a })).join('\n') + '\n');
    const job = (to: string): FailedPromptsJob => ({ kind: 'failed-prompts', dir: BASE, promptsFile: prompts, maxNewTokens: 16, want: 2, to });
    const here = await new StageLanes({ lanes: 1 }).run('grpo-base', job(join(dir, 'here.jsonl')));
    const lanes = new StageLanes({ lanes: 2 });
    try {
      const inWorker = await lanes.run('grpo-base', job(join(dir, 'worker.jsonl')));
      assert.deepEqual(inWorker, here);
      assert.deepEqual(inWorker.lines, [1, 2]);
      assert.equal(readFileSync(join(dir, 'worker.jsonl'), 'utf8'), readFileSync(join(dir, 'here.jsonl'), 'utf8'));
      await assert.rejects(lanes.run('grpo-base', { ...job(join(dir, 'x.jsonl')), promptsFile: join(dir, 'missing.jsonl') }), /missing\.jsonl/);
      const again = await lanes.run('grpo-base', job(join(dir, 'again.jsonl')));
      assert.deepEqual(again.lines, [1, 2]);
    } finally {
      await lanes.close();
    }
  });

  test('cancelling a pipeline with two lanes stops the stages in their worker threads: a PipelineCancelledError, and nothing left running', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'lanes-')), 'run');
    const ac = new AbortController();
    const started: string[] = [];
    await assert.rejects(
      runPipeline(pipelinePlan('demo', { quick: true }), out, {
        baseModelDir: BASE,
        lanes: 2,
        signal: ac.signal,
        onEvent: (e) => {
          if (e.type === 'stage-start') started.push(e.stage);
          if (e.type === 'step' && e.stage.startsWith('sft-')) ac.abort();
        },
      }),
      (e: unknown) => e instanceof PipelineCancelledError,
    );
    // SFT held one lane; the base model's evaluation ran beside it in the other.
    assert.ok(started.includes('sft-48') && started.includes('eval-base'), started.join(','));
    assert.ok(!started.includes('rm'), 'nothing after SFT started');
  });
});
