import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { initBackend } from '@posttrain/backend';
import { initModelDir } from '@posttrain/model';
import { PpoSpec, RolloutServices, RunState, TrainerService, type RunEvent, type RunSpec } from '@posttrain/proto';
import { checkHealth, createClient, PosttrainServer, status } from '@posttrain/rpc';
import { writeTaskFiles } from '@posttrain/task';
import { createLogger } from '@posttrain/telemetry';
import { buildBuiltinTokenizerFiles, createBuiltinTokenizer } from '@posttrain/tokenizer';
import { RunRegistry } from './run-registry';
import { exportRunGauges } from './run-gauges';
import { createTrainerHandlers } from './trainer-handlers';

describe('Trainer run API over gRPC', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-trainer-'));
  const model = join(dir, 'model');
  const data = join(dir, 'data');
  const log = createLogger({ service: 'trainer', level: 'silent' });
  const server = new PosttrainServer({ name: 'trainer', host: '127.0.0.1', port: 0, shutdownGraceMs: 1000, log });
  let client: ReturnType<typeof createClient<typeof TrainerService>>;
  let address = '';
  let runs: RunRegistry;

  before(async () => {
    await initBackend({ backend: 'cpu', logger: { info: () => undefined } });
    const tok = createBuiltinTokenizer();
    const files = buildBuiltinTokenizerFiles();
    await initModelDir(model, { vocabSize: tok.vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 2, numKvHeads: 2, maxPositionEmbeddings: 256, eosTokenId: tok.eosTokenId, padTokenId: tok.padTokenId }, {
      seed: 1,
      assets: { 'tokenizer.json': JSON.stringify(files.tokenizerJson), 'tokenizer_config.json': JSON.stringify(files.tokenizerConfig), 'special_tokens_map.json': JSON.stringify(files.specialTokensMap) },
    });
    await writeTaskFiles(data, { seed: 1, sftSizes: [40], corpusSize: 20, preferenceSize: 20, promptsSize: 8, evalSize: 8 });
    runs = new RunRegistry(join(dir, 'runs'), log);
    server.add('posttrain.v1.Trainer', TrainerService, createTrainerHandlers(runs, { roots: { models: join(dir, 'model'), data } }));
    ({ address } = await server.start());
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
      optimizer: { learningRate: 0.001, schedule: 0, warmupSteps: 0, minLearningRate: 0, weightDecay: 0, maxGradNorm: 1, warmupRatio: 0 },
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
    noFile.dataset!.paths = [join(data, 'absent.jsonl')];
    await assert.rejects(client.unary('startRun', { spec: noFile }), invalid(/^spec\.dataset\.paths\[0\]: ".*absent\.jsonl": no such file/));
    const badLr = sftSpec('x2', 2);
    badLr.optimizer!.learningRate = -1;
    await assert.rejects(client.unary('startRun', { spec: badLr }), invalid(/^spec\.optimizer\.learning_rate: /));
    const noModel = sftSpec('x3', 2);
    mkdirSync(join(model, 'empty'), { recursive: true });
    noModel.baseModelDir = join(model, 'empty');
    await assert.rejects(client.unary('startRun', { spec: noModel }), invalid(/^spec\.base_model_dir: .* has no config\.json/));
    const unknownLr = sftSpec('x5', 2);
    unknownLr.optimizer!.schedule = 999 as never;
    await assert.rejects(client.unary('startRun', { spec: unknownLr }), invalid(/^spec\.optimizer\.schedule: got 999, expected one of 0, 1, 2, 3/));
    const unknownFormat = sftSpec('x6', 2);
    unknownFormat.dataset!.format = 999 as never;
    await assert.rejects(client.unary('startRun', { spec: unknownFormat }), invalid(/^spec\.dataset\.format: got 999/));
    const longName = sftSpec('x7', 2);
    longName.name = 'n'.repeat(5_000);
    await assert.rejects(client.unary('startRun', { spec: longName }), invalid(/^spec\.name: 5000 characters, expected at most 256/));
    const zeroBatch = sftSpec('x4', 2);
    zeroBatch.batchSize = 0;
    await assert.rejects(client.unary('startRun', { spec: zeroBatch }), invalid(/^spec\.batch_size: got 0/));
    await assert.rejects(client.unary('startRun', { spec: sftSpec('sft-a', 2) }), (e: ServiceError) => e.code === status.ALREADY_EXISTS);
    // An online stage is checked by libs/rl's resolver; its field paths come back under spec.
    const grpo = sftSpec('g1', 2);
    grpo.dataset!.paths = [join(data, 'prompts.jsonl')];
    grpo.dataset!.evalPaths = [];
    grpo.stage = { $case: 'grpo', value: { services: RolloutServices.fromPartial({ samplerAddresses: ['127.0.0.1:1'] }), rewardComponents: [], promptsPerStep: 2, groupSize: 4, advantageEstimator: 0, lossAggregation: 0, clipLow: 0, clipHigh: 0, updatesPerBatch: 0, minibatchSize: 0, staleRollouts: 0, maxStaleness: 0, maskTruncatedCompletions: false } } as RunSpec['stage'];
    await assert.rejects(client.unary('startRun', { spec: grpo }), invalid(/^spec\.grpo\.services\.reward_address: /));

    // A spec naming no services takes the trainer's own (POSTTRAIN_*_ADDRESS): the run is accepted with them.
    const registry = new RunRegistry(join(dir, 'runs-defaults'), log);
    const handlers = createTrainerHandlers(registry, { defaultServices: RolloutServices.fromPartial({ samplerAddresses: ['127.0.0.1:9'], referenceAddress: '127.0.0.1:9', rewardAddress: '127.0.0.1:9' }), roots: { models: model, data } });
    const bare = sftSpec('g2', 2);
    bare.dataset!.paths = [join(data, 'prompts.jsonl')];
    bare.dataset!.evalPaths = [];
    bare.stage = { $case: 'grpo', value: { ...(grpo.stage!.value as object), services: undefined, updatesPerBatch: 1, minibatchSize: 8, rewardComponents: [{ name: 'fmt', weight: 1, rule: { $case: 'regex', value: { pattern: 'Answer', flags: '', fullMatch: false, negate: false } } }] } } as RunSpec['stage'];
    const accepted = await handlers.startRun({ spec: bare }, undefined as never);
    registry.cancel('g2', 'test');
    assert.deepEqual((accepted.spec!.stage!.value as { services: { samplerAddresses: string[] } }).services.samplerAddresses, ['127.0.0.1:9']);
    // An elastic pool as the default (--sampler-dns in Kubernetes) reaches the run's config as sampler_dns.
    const dnsRegistry = new RunRegistry(join(dir, 'runs-dns'), log);
    const dnsHandlers = createTrainerHandlers(dnsRegistry, { defaultServices: RolloutServices.fromPartial({ samplerDns: 'policy-sampler:50051', samplerRefreshSeconds: 5, referenceAddress: '127.0.0.1:9', rewardAddress: '127.0.0.1:9' }), roots: { models: model, data } });
    const viaDns = await dnsHandlers.startRun({ spec: { ...bare, runId: 'g3' } }, undefined as never);
    dnsRegistry.cancel('g3', 'test');
    assert.deepEqual(RolloutServices.toJSON((viaDns.spec!.stage!.value as { services: RolloutServices }).services), { samplerDns: 'policy-sampler:50051', samplerRefreshSeconds: 5, referenceAddress: '127.0.0.1:9', rewardAddress: '127.0.0.1:9' });
    await dnsRegistry.drain();
    // A sampler_file outside the data root is refused like any other path.
    const outsideFile = { ...bare, runId: 'g4', stage: { $case: 'grpo', value: { ...(bare.stage!.value as object), services: RolloutServices.fromPartial({ samplerFile: '/etc/hosts', referenceAddress: '127.0.0.1:9', rewardAddress: '127.0.0.1:9' }) } } } as RunSpec;
    await assert.rejects(client.unary('startRun', { spec: outsideFile }), invalid(/^spec\.grpo\.services\.sampler_file: "\/etc\/hosts" resolves to "\/etc\/hosts", outside the data root/));
    // PPO-ptx's pretraining mix: confined to the data root, and checked before the run is queued.
    const ptxSpec = (runId: string, ptxDataset: string) =>
      ({ ...bare, runId, stage: { $case: 'ppo', value: PpoSpec.fromPartial({ services: RolloutServices.fromPartial({ samplerAddresses: ['127.0.0.1:9'], referenceAddress: '127.0.0.1:9', rewardAddress: '127.0.0.1:9' }), rolloutBatchSize: 2, samplesPerPrompt: 1, ppoEpochs: 1, ptxCoef: 0.5, ptxDataset }) } }) as RunSpec;
    await assert.rejects(client.unary('startRun', { spec: ptxSpec('p1', '/etc/hosts') }), invalid(/^spec\.ppo\.ptx_dataset: "\/etc\/hosts" resolves to "\/etc\/hosts", outside the data root/));
    await assert.rejects(client.unary('startRun', { spec: ptxSpec('p2', join(data, 'no-corpus.jsonl')) }), invalid(/^spec\.ppo\.ptx_dataset: ".*no-corpus\.jsonl": no such file/));
    await registry.drain();
    await assert.rejects(client.unary('getRun', { runId: 'nope' }), (e: ServiceError) => e.code === status.NOT_FOUND);
    await assert.rejects(client.unary('listRuns', { pageSize: 1, pageToken: 'forged' }), invalid(/^page_token/));
    // after_sequence = 2^60 on the wire (field 2, varint): not representable as a JS number.
    const varint = (v: bigint) => {
      const out: number[] = [];
      for (; v >= 0x80n; v >>= 7n) out.push(Number(v & 0x7fn) | 0x80);
      return [...out, Number(v)];
    };
    const raw = new Client(address, credentials.createInsecure());
    const huge = Buffer.from([0x0a, 5, ...Buffer.from('sft-a'), 0x10, ...varint(2n ** 60n)]);
    const err = await new Promise<ServiceError>((resolve) => {
      const call = raw.makeServerStreamRequest('/posttrain.v1.Trainer/WatchRun', (b: Buffer) => b, (b: Buffer) => b, huge, new Metadata(), {});
      call.on('data', () => undefined);
      call.on('error', (e) => resolve(e as ServiceError));
    });
    raw.close();
    assert.equal(err.code, status.INVALID_ARGUMENT, err.details);
    assert.match(err.details, /64-bit integer field is outside/);
  });

  test('every RunSpec path outside its root is INVALID_ARGUMENT naming the field, links included, and no file content is quoted', async () => {
    const invalid = (re: RegExp) => (e: ServiceError) => e.code === status.INVALID_ARGUMENT && re.test(e.details) && !/root:x:0:0/.test(e.details);
    symlinkSync('/etc/passwd', join(data, 'passwd-link.jsonl'));
    symlinkSync('/etc', join(data, 'etc-link'));
    const cases: [string, (s: RunSpec) => void, RegExp][] = [
      ['absolute', (s) => (s.dataset!.paths = ['/etc/passwd']), /^spec\.dataset\.paths\[0\]: "\/etc\/passwd" resolves to "\/etc\/passwd", outside the data root/],
      ['../', (s) => (s.dataset!.paths = [join(data, '..', '..', '..', '..', '..', '..', 'etc', 'passwd')]), /^spec\.dataset\.paths\[0\]: .* outside the data root/],
      ['file link', (s) => (s.dataset!.paths = [join(data, 'passwd-link.jsonl')]), /^spec\.dataset\.paths\[0\]: .*passwd-link\.jsonl" resolves to "\/etc\/passwd", outside/],
      ['directory link', (s) => (s.dataset!.evalPaths = [join(data, 'etc-link', 'passwd')]), /^spec\.dataset\.eval_paths\[0\]: .* resolves to "\/etc\/passwd"/],
      ['/proc', (s) => (s.dataset!.evalPaths = ['/proc/self/environ']), /^spec\.dataset\.eval_paths\[0\]: .* outside the data root/],
      ['model', (s) => (s.baseModelDir = '/etc'), /^spec\.base_model_dir: "\/etc" resolves to "\/etc", outside the models root .* or the runs root/],
      ['output absolute', (s) => (s.outputDir = '/tmp/posttrain-escape'), /^spec\.output_dir: .* outside the runs root/],
      ['output ../', (s) => (s.outputDir = join(dir, 'runs', '..', 'elsewhere')), /^spec\.output_dir: .* outside the runs root/],
      ['output link', (s) => (s.outputDir = join(dir, 'runs', 'out-link', 'x')), /^spec\.output_dir: .* outside the runs root/],
    ];
    symlinkSync(tmpdir(), join(dir, 'runs', 'out-link'));
    for (const [label, edit, re] of cases) {
      const spec = sftSpec(`p-${label.replace(/[^a-z]/g, '')}`, 2);
      edit(spec);
      await assert.rejects(client.unary('startRun', { spec }), invalid(re), label);
    }
    assert.ok(!existsSync('/tmp/posttrain-escape'), 'nothing was written outside the runs root');
  });

  test('output_dir inside the runs root is honoured by an offline stage', async () => {
    const spec = sftSpec('sft-out', 2);
    spec.outputDir = join(dir, 'runs', 'team-a');
    const run = await client.unary('startRun', { spec });
    assert.equal(run.outputDir, join(dir, 'runs', 'team-a', 'sft-out'));
    await watch('sft-out');
    assert.equal((await client.unary('getRun', { runId: 'sft-out' })).state, RunState.SUCCEEDED);
    assert.ok(existsSync(join(dir, 'runs', 'team-a', 'sft-out', 'metrics.jsonl')));
    assert.ok(existsSync(join(dir, 'runs', 'sft-out', 'run.json')), 'the run record stays in the runs directory');
  });

  test('health and GetRun answer within 1 s at p99 while an SFT run trains in its worker, and WatchRun delivers each step within 2 s', async (t) => {
    const spec = sftSpec('sft-live', 80);
    spec.checkpointEverySteps = 1000;
    const stopGauges = exportRunGauges(runs, server.metrics);
    await client.unary('startRun', { spec });
    const probeClient = createClient(TrainerService, [address], { maxAttempts: 1, deadlineMs: 5_000 });
    const latencies: number[] = [];
    const stepArrivals: number[] = [];
    const deliveryMs: number[] = [];
    const watcher = (async () => {
      for await (const e of client.serverStream('watchRun', { runId: 'sft-live', afterSequence: 0, historyOnly: false })) {
        if (e.event?.$case !== 'metrics' || e.event.value.split !== 'train') continue;
        stepArrivals.push(Date.now());
        deliveryMs.push(Date.now() - e.time!.getTime()); // the event's time is when the worker ended the step
      }
    })();
    let state = RunState.PENDING;
    while (state === RunState.PENDING || state === RunState.RUNNING) {
      const t0 = performance.now();
      assert.equal(await checkHealth(address, '', 5_000), 'SERVING');
      state = (await probeClient.unary('getRun', { runId: 'sft-live' })).state;
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 50));
    }
    await watcher;
    probeClient.close();
    assert.equal(state, RunState.SUCCEEDED);
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))];
    // Probes across the whole run (it trains for seconds); in-process training blocked them until it ended.
    assert.ok(latencies.length >= 10, `only ${latencies.length} probes while the run trained`);
    t.diagnostic(`health + GetRun over ${latencies.length} probes during ${((stepArrivals.at(-1)! - stepArrivals[0]) / 1000).toFixed(1)} s of training: p50 ${latencies[Math.floor(latencies.length / 2)].toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`);
    assert.ok(p99 < 1000, `health + GetRun p99 ${p99.toFixed(0)} ms over ${latencies.length} probes, expected < 1000 ms`);
    assert.equal(stepArrivals.length, 80);
    // The run's progress on the Trainer's metrics port, from the same events.
    stopGauges();
    const exposition = await server.metrics.metrics();
    assert.match(exposition, /posttrain_train_step\{[^}]*run_id="sft-live"[^}]*\} 80\n/);
    assert.match(exposition, /posttrain_train_total_steps\{[^}]*run_id="sft-live"[^}]*\} 80\n/);
    const loss = /posttrain_train_loss\{[^}]*run_id="sft-live"[^}]*\} ([0-9.e+-]+)\n/.exec(exposition);
    assert.ok(loss && Number(loss[1]) > 0, `SFT's train/loss exported as posttrain_train_loss: ${exposition.split('\n').filter((l) => l.startsWith('posttrain_train')).join('; ')}`);
    const slowest = Math.max(...deliveryMs);
    t.diagnostic(`WatchRun delivery of step metrics (worker's step end -> watcher): p50 ${deliveryMs.sort((a, b) => a - b)[40].toFixed(0)} ms, max ${slowest.toFixed(0)} ms`);
    assert.ok(slowest < 2000, `WatchRun delivered a step's metrics ${slowest} ms after the worker ended the step, expected < 2000 ms`);
    assert.ok(stepArrivals.at(-1)! - stepArrivals[0] > 500, 'step metrics arrived spread over the run, not all at its end');
  });
});
