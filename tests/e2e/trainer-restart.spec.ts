import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@posttrain/backend';
import { startLocalServices, type LocalServiceGroup } from '@posttrain/cli';
import { RunState, TrainerService, type RunEvent, type RunSpec } from '@posttrain/proto';
import { createClient } from '@posttrain/rpc';
import { writeTaskFiles } from '@posttrain/task';
import { writeE2eModel } from './e2e-model';

// The Trainer service killed with SIGKILL mid-run (its run worker goes with
// it), then restarted on the same runs directory: the run is listed as
// INTERRUPTED with its history, and resumes to the weights of an
// uninterrupted run.
describe('Trainer service killed mid-run and restarted', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-trainer-restart-'));
  const model = join(dir, 'models', 'tiny');
  const data = join(dir, 'data');
  const runs = join(dir, 'runs');
  const groups: LocalServiceGroup[] = [];

  const startTrainer = async () => {
    const g = await startLocalServices([{ name: 'trainer', label: 'trainer', args: ['--runs-dir', runs, '--models-root', join(dir, 'models'), '--data-root', data], env: { POSTTRAIN_LOG_LEVEL: 'warn' } }], { host: '127.0.0.1', startupTimeoutMs: 120_000 });
    groups.push(g);
    return { group: g, client: createClient(TrainerService, g.services[0].address, { maxAttempts: 1, deadlineMs: 240_000 }) };
  };

  before(async () => {
    await initBackend({ backend: 'cpu', logger: { info: () => undefined } });
    await writeE2eModel(model, 4);
    await writeTaskFiles(data, { seed: 3, sftSizes: [40], corpusSize: 10, preferenceSize: 8, promptsSize: 4, evalSize: 4 });
  });
  after(async () => {
    for (const g of groups) await g.stop(2_000);
    rmSync(dir, { recursive: true, force: true });
  });

  const spec = (runId: string, resume = false): RunSpec =>
    ({
      runId,
      name: '',
      baseModelDir: model,
      outputDir: '',
      dataset: { paths: [join(data, 'sft-40.jsonl')], format: 0, evalPaths: [], evalFraction: 0, maxSamples: 0 },
      seed: 11,
      maxSteps: 60,
      maxEpochs: 0,
      batchSize: 4,
      gradAccumulationSteps: 0,
      optimizer: { learningRate: 0.002, schedule: 0, warmupSteps: 0, minLearningRate: 0, weightDecay: 0, maxGradNorm: 1, warmupRatio: 0 },
      checkpointEverySteps: 5,
      keepCheckpoints: 0,
      resume,
      evalEverySteps: 0,
      logEverySteps: 1,
      stage: { $case: 'sft', value: { assistantOnlyLoss: true, completionOnlyLoss: true, packing: false, maxLength: 128 } },
    }) as RunSpec;

  test('the run is listed INTERRUPTED with its history and resumes to the uninterrupted weights', async () => {
    const a = await startTrainer();
    await a.client.unary('startRun', { spec: spec('whole') });
    for await (const _ of a.client.serverStream('watchRun', { runId: 'whole', afterSequence: 0, historyOnly: false }));
    assert.equal((await a.client.unary('getRun', { runId: 'whole' })).state, RunState.SUCCEEDED);

    await a.client.unary('startRun', { spec: spec('cut') });
    let killedAfter = 0;
    for await (const e of a.client.serverStream('watchRun', { runId: 'cut', afterSequence: 0, historyOnly: false })) {
      if (e.event?.$case === 'checkpoint' && e.event.value.step >= 10) {
        killedAfter = e.event.value.step;
        a.group.services[0].process.kill('SIGKILL');
        break;
      }
    }
    a.client.close();
    assert.ok(killedAfter >= 10);
    // The trainer died while appending, say: a torn last line of the history is dropped, not fatal.
    appendFileSync(join(runs, 'cut', 'events.jsonl'), '{"sequence": 9999, "runId": "cu');

    const b = await startTrainer();
    const listed = (await b.client.unary('listRuns', { pageSize: 0, pageToken: '' })).runs;
    assert.deepEqual(listed.map((r) => [r.id, RunState[r.state]]).sort(), [['cut', 'INTERRUPTED'], ['whole', 'SUCCEEDED']]);
    const cut = listed.find((r) => r.id === 'cut')!;
    assert.ok(cut.lastCheckpoint && cut.lastCheckpoint.step >= killedAfter, JSON.stringify(cut.lastCheckpoint));
    const history: RunEvent[] = [];
    for await (const e of b.client.serverStream('watchRun', { runId: 'cut', afterSequence: 0, historyOnly: true })) history.push(e);
    const steps = history.filter((e) => e.event?.$case === 'metrics').map((e) => (e.event as { value: { step: number } }).value.step);
    assert.ok(steps.length >= killedAfter, `history kept ${steps.length} step events`);
    assert.equal(history.at(-1)?.event?.$case, 'stateChanged');

    await b.client.unary('startRun', { spec: spec('cut', true) });
    const resumed: RunEvent[] = [];
    for await (const e of b.client.serverStream('watchRun', { runId: 'cut', afterSequence: history.length, historyOnly: false })) resumed.push(e);
    b.client.close();
    assert.equal(resumed[0].sequence, history.length + 1, 'the history continues its sequence');
    const finished = resumed.at(-1)!.event as { $case: string; value: { state: RunState; errorMessage: string; finalStep: number } };
    assert.equal(finished.$case, 'finished');
    assert.equal(finished.value.state, RunState.SUCCEEDED, finished.value.errorMessage);
    assert.equal(finished.value.finalStep, 60);
    const weights = (id: string) => readFileSync(join(runs, id, 'model', 'model.safetensors'));
    assert.ok(weights('cut').equals(weights('whole')), 'resumed weights are bit-identical to the uninterrupted run');
  });
});
