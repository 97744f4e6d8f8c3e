import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { initBackend } from '@posttrain/backend';
import { initModelDir } from '@posttrain/model';
import { RunState, TrainerService, type RunEvent, type RunSpec } from '@posttrain/proto';
import { createClient, PosttrainServer, status } from '@posttrain/rpc';
import { writeTaskFiles } from '@posttrain/task';
import { createLogger } from '@posttrain/telemetry';
import { buildBuiltinTokenizerFiles, createBuiltinTokenizer } from '@posttrain/tokenizer';
import { RunRegistry } from './run-registry';
import { createTrainerHandlers } from './trainer-handlers';

describe('Trainer run API over gRPC', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-trainer-'));
  const model = join(dir, 'model');
  const data = join(dir, 'data');
  const log = createLogger({ service: 'trainer', level: 'silent' });
  const server = new PosttrainServer({ name: 'trainer', host: '127.0.0.1', port: 0, shutdownGraceMs: 1000, log });
  let client: ReturnType<typeof createClient<typeof TrainerService>>;

  before(async () => {
    await initBackend({ backend: 'cpu', logger: { info: () => undefined } });
    const tok = createBuiltinTokenizer();
    const files = buildBuiltinTokenizerFiles();
    await initModelDir(model, { vocabSize: tok.vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 2, numKvHeads: 2, maxPositionEmbeddings: 256, eosTokenId: tok.eosTokenId, padTokenId: tok.padTokenId }, {
      seed: 1,
      assets: { 'tokenizer.json': JSON.stringify(files.tokenizerJson), 'tokenizer_config.json': JSON.stringify(files.tokenizerConfig), 'special_tokens_map.json': JSON.stringify(files.specialTokensMap) },
    });
    await writeTaskFiles(data, { seed: 1, sftSizes: [40], corpusSize: 20, preferenceSize: 20, promptsSize: 8, evalSize: 8 });
    server.add('posttrain.v1.Trainer', TrainerService, createTrainerHandlers(new RunRegistry(join(dir, 'runs'), log)));
    const { address } = await server.start();
    server.setServing(true);
    client = createClient(TrainerService, [address], { maxAttempts: 1, deadlineMs: 120_000 });
  });
  after(async () => {
    client.close();
    await server.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const sftSpec = (runId: string, maxSteps: number): RunSpec =>
    ({
      runId,
      name: '',
      baseModelDir: model,
      outputDir: '',
      dataset: { paths: [join(data, 'sft-40.jsonl')], format: 0, evalPaths: [join(data, 'sft-eval.jsonl')], evalFraction: 0, maxSamples: 0 },
      seed: 7,
      maxSteps,
      maxEpochs: 0,
      batchSize: 4,
      gradAccumulationSteps: 0,
      optimizer: { learningRate: 0.001, schedule: 0, warmupSteps: 0, minLearningRate: 0, weightDecay: 0, maxGradNorm: 1 },
      checkpointEverySteps: 2,
      keepCheckpoints: 0,
      resume: false,
      evalEverySteps: 0,
      logEverySteps: 1,
      stage: { $case: 'sft', value: { assistantOnlyLoss: true, completionOnlyLoss: true, packing: false, maxLength: 128 } },
    }) as RunSpec;

  async function watch(runId: string): Promise<RunEvent[]> {
    const events: RunEvent[] = [];
    for await (const e of client.serverStream('watchRun', { runId, afterSequence: 0, historyOnly: false })) events.push(e);
    return events;
  }

  test('an SFT run goes PENDING -> RUNNING -> SUCCEEDED, streaming step metrics and checkpoints', async () => {
    const run = await client.unary('startRun', { spec: sftSpec('sft-a', 4) });
    assert.equal(run.id, 'sft-a');
    const events = await watch('sft-a');
    const states = events.filter((e) => e.event?.$case === 'stateChanged').map((e) => (e.event as { value: RunState }).value);
    assert.deepEqual(states, [RunState.PENDING, RunState.RUNNING, RunState.SUCCEEDED]);
    const steps = events.filter((e) => e.event?.$case === 'metrics' && e.event.value.split === 'train').map((e) => (e.event as { value: { step: number } }).value.step);
    assert.deepEqual(steps, [1, 2, 3, 4]);
    assert.ok(events.some((e) => e.event?.$case === 'checkpoint'));
    assert.equal(events.at(-1)?.event?.$case, 'finished');
    assert.deepEqual(events.map((e) => e.sequence), events.map((_, i) => i + 1), 'sequences are 1..n without gaps');
    const got = await client.unary('getRun', { runId: 'sft-a' });
    assert.equal(got.state, RunState.SUCCEEDED);
    assert.equal(got.lastStep, 4);
    assert.ok(existsSync(join(dir, 'runs', 'sft-a', 'run.json')));
    // Resuming the stream after a sequence number gives exactly the rest.
    const tail: RunEvent[] = [];
    for await (const e of client.serverStream('watchRun', { runId: 'sft-a', afterSequence: 3, historyOnly: true })) tail.push(e);
    assert.deepEqual(tail.map((e) => e.sequence), events.slice(3).map((e) => e.sequence));
  });

  test('CancelRun stops a run at a step boundary and it ends CANCELLED', async () => {
    await client.unary('startRun', { spec: sftSpec('sft-long', 400) });
    for await (const e of client.serverStream('watchRun', { runId: 'sft-long', afterSequence: 0, historyOnly: false })) {
      if (e.event?.$case === 'metrics') break;
    }
    await client.unary('cancelRun', { runId: 'sft-long', reason: 'test' });
    const events = await watch('sft-long');
    const finished = events.at(-1)!;
    assert.equal(finished.event?.$case, 'finished');
    assert.equal((finished.event as { value: { state: RunState } }).value.state, RunState.CANCELLED);
    const run = await client.unary('getRun', { runId: 'sft-long' });
    assert.ok(run.lastStep < 400);
  });

  test('ListRuns pages newest first', async () => {
    const page1 = await client.unary('listRuns', { pageSize: 1, pageToken: '' });
    assert.equal(page1.runs.length, 1);
    assert.equal(page1.runs[0].id, 'sft-long');
    const page2 = await client.unary('listRuns', { pageSize: 1, pageToken: page1.nextPageToken });
    assert.equal(page2.runs[0].id, 'sft-a');
    assert.equal(page2.nextPageToken, '');
  });

  test('bad specs are INVALID_ARGUMENT naming the field; a taken id is ALREADY_EXISTS; an unknown one NOT_FOUND', async () => {
    const invalid = (re: RegExp) => (e: ServiceError) => e.code === status.INVALID_ARGUMENT && re.test(e.details);
    const noFile = sftSpec('x1', 2);
    noFile.dataset!.paths = [join(dir, 'absent.jsonl')];
    await assert.rejects(client.unary('startRun', { spec: noFile }), invalid(/^spec\.dataset\.paths\[0\]: ".*absent\.jsonl": no such file/));
    const badLr = sftSpec('x2', 2);
    badLr.optimizer!.learningRate = -1;
    await assert.rejects(client.unary('startRun', { spec: badLr }), invalid(/^spec\.optimizer\.learning_rate: /));
    const noModel = sftSpec('x3', 2);
    noModel.baseModelDir = dir;
    await assert.rejects(client.unary('startRun', { spec: noModel }), invalid(/^spec\.base_model_dir: .* has no config\.json/));
    const zeroBatch = sftSpec('x4', 2);
    zeroBatch.batchSize = 0;
    await assert.rejects(client.unary('startRun', { spec: zeroBatch }), invalid(/^spec\.batch_size: got 0/));
    await assert.rejects(client.unary('startRun', { spec: sftSpec('sft-a', 2) }), (e: ServiceError) => e.code === status.ALREADY_EXISTS);
    // An online stage is checked by libs/rl's resolver; its field paths come back under spec.
    const grpo = sftSpec('g1', 2);
    grpo.dataset!.paths = [join(data, 'prompts.jsonl')];
    grpo.dataset!.evalPaths = [];
    grpo.stage = { $case: 'grpo', value: { services: { samplerAddresses: ['127.0.0.1:1'], referenceAddress: '', rewardAddress: '' }, rewardComponents: [], promptsPerStep: 2, groupSize: 4, advantageEstimator: 0, lossAggregation: 0, clipLow: 0, clipHigh: 0, updatesPerBatch: 0, minibatchSize: 0, staleRollouts: 0, maxStaleness: 0 } } as RunSpec['stage'];
    await assert.rejects(client.unary('startRun', { spec: grpo }), invalid(/^spec\.grpo\.services\.reward_address: /));

    // A spec naming no services takes the trainer's own (POSTTRAIN_*_ADDRESS): the run is accepted with them.
    const registry = new RunRegistry(join(dir, 'runs-defaults'), log);
    const handlers = createTrainerHandlers(registry, { samplerAddresses: ['127.0.0.1:9'], referenceAddress: '127.0.0.1:9', rewardAddress: '127.0.0.1:9' });
    const bare = sftSpec('g2', 2);
    bare.dataset!.paths = [join(data, 'prompts.jsonl')];
    bare.dataset!.evalPaths = [];
    bare.stage = { $case: 'grpo', value: { ...(grpo.stage!.value as object), services: undefined, updatesPerBatch: 1, minibatchSize: 8, rewardComponents: [{ name: 'fmt', weight: 1, rule: { $case: 'regex', value: { pattern: 'Answer', flags: '', fullMatch: false, negate: false } } }] } } as RunSpec['stage'];
    const accepted = await handlers.startRun({ spec: bare }, undefined as never);
    registry.cancel('g2', 'test');
    assert.deepEqual((accepted.spec!.stage!.value as { services: { samplerAddresses: string[] } }).services.samplerAddresses, ['127.0.0.1:9']);
    await registry.drain();
    await assert.rejects(client.unary('getRun', { runId: 'nope' }), (e: ServiceError) => e.code === status.NOT_FOUND);
    await assert.rejects(client.unary('listRuns', { pageSize: 1, pageToken: 'forged' }), invalid(/^page_token/));
  });
});
