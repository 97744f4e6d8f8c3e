import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@posttrain/backend';
import { startLocalServices, type LocalServiceGroup } from '@posttrain/cli';
import { RunState, TrainerService, type RunEvent, type RunSpec } from '@posttrain/proto';
import { createClient } from '@posttrain/rpc';
import { writeTaskFiles } from '@posttrain/task';
import { writeE2eModel } from './e2e-model';

// DPO through the Trainer service, its reference log-probs from a ReferenceModel
// service: the trainer -> reference hop, as separate processes.
describe('Trainer DPO run with the reference service', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-dpo-ref-'));
  const model = join(dir, 'model');
  const other = join(dir, 'other-model');
  const data = join(dir, 'data');
  let group: LocalServiceGroup;

  before(async () => {
    await initBackend({ backend: 'cpu', logger: { info: () => undefined } });
    await writeE2eModel(model, 5);
    await writeE2eModel(other, 6);
    await writeTaskFiles(data, { seed: 2, sftSizes: [10], corpusSize: 10, preferenceSize: 16, promptsSize: 4, evalSize: 4 });
    group = await startLocalServices(
      [
        { name: 'reference', label: 'reference', args: ['--model', model], env: { POSTTRAIN_BACKEND: 'cpu' } },
        { name: 'reference', label: 'reference-other', args: ['--model', other], env: { POSTTRAIN_BACKEND: 'cpu' } },
        { name: 'trainer', label: 'trainer', args: ['--runs-dir', join(dir, 'runs'), '--models-root', dir, '--data-root', dir], env: { POSTTRAIN_BACKEND: 'cpu' } },
      ],
      { host: '127.0.0.1', startupTimeoutMs: 120_000 },
    );
  });
  after(async () => {
    await group?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const addr = (label: string) => group.services.find((s) => s.label === label)!.address;

  async function dpoRun(runId: string, referenceAddress: string): Promise<{ state: RunState; error: string; step1: Record<string, number> }> {
    const trainer = createClient(TrainerService, addr('trainer'), { deadlineMs: 240_000 });
    const spec = {
      runId,
      name: '',
      baseModelDir: model,
      outputDir: '',
      dataset: { paths: [join(data, 'preference.jsonl')], format: 0, evalPaths: [], evalFraction: 0, maxSamples: 0 },
      seed: 3,
      maxSteps: 2,
      maxEpochs: 0,
      batchSize: 4,
      gradAccumulationSteps: 0,
      optimizer: { learningRate: 0.001, schedule: 0, warmupSteps: 0, minLearningRate: 0, weightDecay: 0, maxGradNorm: 1, warmupRatio: 0 },
      checkpointEverySteps: 0,
      keepCheckpoints: 0,
      resume: false,
      evalEverySteps: 0,
      logEverySteps: 1,
      stage: { $case: 'dpo', value: { beta: 0.1, lossType: 0, labelSmoothing: 0, maxLength: 128, maxPromptLength: 0, reference: { $case: 'referenceAddress', value: referenceAddress } } },
    } as RunSpec;
    await trainer.unary('startRun', { spec });
    const events: RunEvent[] = [];
    for await (const e of trainer.serverStream('watchRun', { runId, afterSequence: 0, historyOnly: false })) events.push(e);
    trainer.close();
    const finished = events.at(-1)!.event as { $case: string; value: { state: RunState; errorMessage: string } };
    assert.equal(finished.$case, 'finished');
    const first = events.find((e) => e.event?.$case === 'metrics')!.event as { value: { step: number; values: Record<string, number> } };
    assert.equal(first.value.step, 1);
    return { state: finished.value.state, error: finished.value.errorMessage, step1: first.value.values };
  }

  test('with the same weights as the policy, the implicit rewards start at 0', async () => {
    const r = await dpoRun('dpo-ref', addr('reference'));
    assert.equal(r.state, RunState.SUCCEEDED, r.error);
    // log pi - log pi_ref = 0 up to float32 noise across processes (tolerance 1e-4).
    assert.ok(Math.abs(r.step1['rewards/chosen']) < 1e-4, JSON.stringify(r.step1));
    assert.ok(Math.abs(r.step1['rewards/rejected']) < 1e-4, JSON.stringify(r.step1));
  });

  test('the reference really comes from the service: another model there gives non-zero rewards at step 1', async () => {
    const r = await dpoRun('dpo-other', addr('reference-other'));
    assert.equal(r.state, RunState.SUCCEEDED, r.error);
    assert.ok(Math.abs(r.step1['rewards/chosen']) > 1e-3, JSON.stringify(r.step1));
  });
});
