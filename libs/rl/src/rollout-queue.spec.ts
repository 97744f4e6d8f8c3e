import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DataPosition, PromptBatch } from '@posttrain/data';
import type { OnlineRun } from './online-run';
import { RolloutQueue } from './rollout-queue';
import type { GenerateRolloutsOptions, RolloutPrompt, RolloutsResult } from './rollout-types';

/** A run with a loader of 2 prompts per batch over 6 lines and a pool that answers when told to. */
function fakeRun(totalSteps: number) {
  let index = 0;
  const sent: { step: number; ids: string[] }[] = [];
  const answers: (() => void)[] = [];
  const run = {
    totalSteps,
    weightsVersion: 1,
    config: { samplesPerPrompt: 1, sampling: { temperature: 1 }, seed: 0 },
    prompts: {
      position: (): DataPosition => ({ seed: 0, epoch: 0, index, datasetSize: 6 }),
      next: async (): Promise<PromptBatch> => {
        const lines = [index + 1, index + 2];
        index += 2;
        return { batchSize: 2, seqLen: 1, paddingSide: 'left', inputIds: Int32Array.from([7, 8]), attentionMask: Int32Array.from([1, 1]), positionIds: new Int32Array(2), promptLengths: Int32Array.from([1, 1]), prompts: ['a', 'b'], groundTruths: [null, null], lines } as PromptBatch;
      },
    },
    pool: {
      generate: (prompts: readonly RolloutPrompt[], _options: GenerateRolloutsOptions): Promise<RolloutsResult> => {
        sent.push({ step: Number(/^s(\d+)/.exec(prompts[0].id)![1]), ids: prompts.map((p) => p.id) });
        return new Promise((resolve) => answers.push(() => resolve({ rollouts: [], retries: 0, perSampler: {} })));
      },
    },
  };
  return { run: run as unknown as OnlineRun, sent, answers };
}

describe('RolloutQueue', () => {
  test('synchronous (max_staleness 0): a step sends its own prompts only, and a checkpoint records the loader position', async () => {
    const { run, sent, answers } = fakeRun(3);
    const queue = new RolloutQueue(run, 0, undefined, 1);
    const taken = queue.take(1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(sent.map((s) => s.step), [1]);
    answers[0]();
    const step1 = await taken;
    assert.deepEqual([...step1.prompts.values()].map((p) => p.line), [1, 2]);
    assert.equal(queue.inFlight, 0);
    assert.deepEqual(queue.position(), { seed: 0, epoch: 0, index: 2, datasetSize: 6 });
  });

  test('asynchronous (max_staleness 2): the next two steps are in flight while one trains, never past the last step; a checkpoint records the position before the first unconsumed batch', async () => {
    const { run, sent, answers } = fakeRun(4);
    const queue = new RolloutQueue(run, 2, undefined, 1);
    const first = queue.take(1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(sent.map((s) => s.step), [1, 2, 3], 'steps 2 and 3 are sent before step 1 is answered');
    answers[0]();
    await first;
    assert.equal(queue.inFlight, 2);
    // Prompts of steps 2 and 3 were drawn (lines 3-6) but not consumed: a resumed run draws them again.
    assert.deepEqual(queue.position(), { seed: 0, epoch: 0, index: 2, datasetSize: 6 });
    answers[1]();
    const second = queue.take(2);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(sent.map((s) => s.step), [1, 2, 3, 4]);
    const step2 = await second;
    assert.deepEqual([...step2.prompts.keys()], ['s2-p0-l3', 's2-p1-l4']);
    answers[2]();
    answers[3]();
    await queue.take(3);
    await queue.take(4);
    assert.deepEqual(sent.map((s) => s.step), [1, 2, 3, 4], 'nothing is sent past the last step');
    await assert.rejects(queue.take(4), /rollout queue/);
  });

  test('a request that fails while queued is reported when its step takes it, not as an unhandled rejection', async () => {
    const { run } = fakeRun(3);
    let calls = 0;
    (run.pool as unknown as { generate: () => Promise<RolloutsResult> }).generate = () => (++calls === 2 ? Promise.reject(new Error('sampler gone')) : Promise.resolve({ rollouts: [], retries: 0, perSampler: {} }));
    const queue = new RolloutQueue(run, 1, undefined, 1);
    await queue.take(1);
    await new Promise((r) => setTimeout(r, 10));
    await assert.rejects(queue.take(2), /sampler gone/);
  });
});
