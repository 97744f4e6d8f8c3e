// SIGKILL of the Trainer service after a checkpoint of a short SFT run, a restart on the same runs directory, and
// StartRun(resume): the run must be listed INTERRUPTED, complete, and end with the weights of an uninterrupted run.
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalServices, type LocalServiceGroup } from '@posttrain/cli';
import { RunState, TrainerService, type RunSpec } from '@posttrain/proto';
import { createClient } from '@posttrain/rpc';
import { writeTaskFiles } from '@posttrain/task';

export interface TrainerRoots {
  runsDir: string;
  modelsRoot: string;
  dataRoot: string;
}

export const startTrainer = (roots: TrainerRoots): Promise<LocalServiceGroup> =>
  startLocalServices([{ name: 'trainer', label: 'trainer', args: ['--runs-dir', roots.runsDir, '--models-root', roots.modelsRoot, '--data-root', roots.dataRoot], env: { POSTTRAIN_LOG_LEVEL: 'error' } }], { host: '127.0.0.1', startupTimeoutMs: 120_000 });

/**
 * Runs the scenario against `running` (a trainer on `roots`), which it kills; returns the restarted group (the caller
 * stops it) and whether the run survived. `model` is a model directory, copied under the models root.
 */
export async function killTrainerAndResume(running: LocalServiceGroup, roots: TrainerRoots, model: string, quick: boolean): Promise<{ restarted: LocalServiceGroup | null; survived: boolean; observed: string }> {
  const base = join(roots.modelsRoot, 'tiny');
  cpSync(model, base, { recursive: true });
  await writeTaskFiles(roots.dataRoot, { seed: 3, sftSizes: [40], corpusSize: 10, preferenceSize: 8, promptsSize: 4, evalSize: 4 });
  const maxSteps = quick ? 20 : 60;
  const spec = (runId: string, resume = false) =>
    ({
      runId, name: '', baseModelDir: base, outputDir: '', seed: 11, maxSteps, maxEpochs: 0, batchSize: 4, gradAccumulationSteps: 0, checkpointEverySteps: 5, keepCheckpoints: 0, resume, evalEverySteps: 0, logEverySteps: 1,
      dataset: { paths: [join(roots.dataRoot, 'sft-40.jsonl')], format: 0, evalPaths: [], evalFraction: 0, maxSamples: 0 },
      optimizer: { learningRate: 0.002, schedule: 0, warmupSteps: 0, minLearningRate: 0, weightDecay: 0, maxGradNorm: 1, warmupRatio: 0 },
      stage: { $case: 'sft', value: { assistantOnlyLoss: true, completionOnlyLoss: true, packing: false, maxLength: 64 } },
    }) as RunSpec;
  const opts = { maxAttempts: 1, deadlineMs: 240_000 };
  const a = createClient(TrainerService, running.services[0].address, opts);
  const watch = (client: typeof a, runId: string) => client.serverStream('watchRun', { runId, afterSequence: 0, historyOnly: false });
  await a.unary('startRun', { spec: spec('whole') });
  for await (const _ of watch(a, 'whole'));
  await a.unary('startRun', { spec: spec('cut') });
  let killedAfter = 0;
  for await (const e of watch(a, 'cut')) {
    if (e.event?.$case === 'checkpoint' && e.event.value.step >= 10) {
      killedAfter = e.event.value.step;
      running.services[0].process.kill('SIGKILL');
      break;
    }
  }
  a.close();
  if (killedAfter === 0) return { restarted: null, survived: false, observed: 'the run ended before a checkpoint at step >= 10' };
  const restartedAt = Date.now();
  const restarted = await startTrainer(roots);
  const b = createClient(TrainerService, restarted.services[0].address, opts);
  try {
    const listed = (await b.unary('getRun', { runId: 'cut' })).state;
    await b.unary('startRun', { spec: spec('cut', true) });
    let finished: { state: RunState; finalStep: number; errorMessage: string } | undefined;
    for await (const e of b.serverStream('watchRun', { runId: 'cut', afterSequence: 0, historyOnly: false })) if (e.event?.$case === 'finished') finished = e.event.value;
    const weights = (id: string) => readFileSync(join(roots.runsDir, id, 'model', 'model.safetensors'));
    const same = finished?.state === RunState.SUCCEEDED && weights('cut').equals(weights('whole'));
    const survived = listed === RunState.INTERRUPTED && finished?.state === RunState.SUCCEEDED && finished.finalStep === maxSteps && same;
    const observed = `killed after the step-${killedAfter} checkpoint; listed ${RunState[listed]}; resumed: ${finished ? `${RunState[finished.state]} at step ${finished.finalStep}${finished.errorMessage ? ` (${finished.errorMessage.slice(0, 60)})` : ''}` : 'no outcome'}; weights ${same ? 'equal' : 'differ from'} the uninterrupted run's; restart to end ${((Date.now() - restartedAt) / 1000).toFixed(1)} s`;
    return { restarted, survived, observed };
  } finally {
    b.close();
  }
}
