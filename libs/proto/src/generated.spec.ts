// Checks that the generated code carries the contracts as written in protos/:
// field numbers, presence, oneofs, maps, timestamps, service paths and
// streaming kinds, a real grpc-js round trip, and that the index re-exports it all.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Server, ServerCredentials, credentials, type ServiceError } from '@grpc/grpc-js';
import * as api from './index';
import {
  DType,
  FinishReason,
  GenerateRequest,
  GenerateResponse,
  KlEstimator,
  PolicySamplerClient,
  PolicySamplerService,
  ReferenceModelService,
  RewardScorerService,
  RunEvent,
  RunSpec,
  RunState,
  SamplingParams,
  TrainerService,
  WeightsAck,
  WeightsChunk,
  WeightsFormat,
  AdvantageEstimator,
  LossAggregation,
  ExtractionMode,
  DpoLossType,
  type PolicySamplerServer,
} from './index';

describe('messages round-trip through the wire format', () => {
  test('GenerateRequest with every prompt form, optional fields and sampling params', () => {
    const req = GenerateRequest.fromPartial({
      prompts: [
        { input: { $case: 'tokenIds', value: { ids: [1, 15, 27, 2] } } },
        { input: { $case: 'messages', value: { messages: [{ role: 'user', content: '12+7=?' }] } } },
        { input: { $case: 'text', value: 'Once upon' } },
      ],
      n: 4,
      sampling: {
        temperature: 0.7,
        topP: 0.9,
        topK: 50,
        maxNewTokens: 64,
        stop: ['\n\n', '</answer>'],
        stopTokenIds: [2, 7],
        seed: 1234,
        logprobs: true,
      },
      minWeightsVersion: 3,
      requestId: 'req-1',
    });
    const bytes = GenerateRequest.encode(req).finish();
    const back = GenerateRequest.decode(bytes);
    // 0.7 and 0.9 are `float` on the wire: compare against their float32 roundings.
    assert.deepEqual(back, { ...req, sampling: { ...req.sampling, temperature: Math.fround(0.7), topP: Math.fround(0.9) } });
    assert.deepEqual(GenerateRequest.fromJSON(GenerateRequest.toJSON(back)), back);
  });

  test('field numbers and presence match the proto (bytes derived by hand)', () => {
    // n = 2 is field 2, varint: tag (2 << 3) | 0 = 0x10, value 0x02.
    assert.deepEqual([...GenerateRequest.encode(GenerateRequest.fromPartial({ n: 2 })).finish()], [0x10, 0x02]);
    // seed is `optional uint64` field 7: an explicit 0 is sent (tag 7 << 3 = 0x38, value 0), unset is not.
    assert.deepEqual([...SamplingParams.encode(SamplingParams.fromPartial({ seed: 0 })).finish()], [0x38, 0x00]);
    assert.deepEqual([...SamplingParams.encode(SamplingParams.fromPartial({})).finish()], []);
    assert.equal(SamplingParams.decode(new Uint8Array([0x38, 0x00])).seed, 0);
    assert.equal(SamplingParams.decode(new Uint8Array([])).seed, undefined);
    // temperature is `optional float` field 1: tag (1 << 3) | 5 = 0x0d, then 1.0f little-endian = 00 00 80 3f.
    assert.deepEqual([...SamplingParams.encode(SamplingParams.fromPartial({ temperature: 1 })).finish()], [0x0d, 0, 0, 0x80, 0x3f]);
  });

  test('RunSpec for each stage, with nested specs, enums, optionals and the stage oneof', () => {
    const common = {
      runId: 'grpo-1',
      name: 'grpo on arithmetic',
      baseModelDir: 'runs/sft-1/final',
      outputDir: 'runs/grpo-1',
      dataset: { paths: ['data/prompts.jsonl'], format: api.DatasetFormat.PROMPT_ONLY, evalFraction: 0.1, fields: { prompt: 'question', groundTruth: 'answer' } },
      seed: 42,
      maxSteps: 200,
      batchSize: 8,
      gradAccumulationSteps: 2,
      optimizer: { learningRate: 1e-5, schedule: api.LrSchedule.COSINE, warmupSteps: 10, maxGradNorm: 1, beta2: 0.95 },
      lora: { rank: 8, alpha: 16, dropout: 0.05, targetModules: ['q_proj', 'v_proj'] },
      checkpointEverySteps: 50,
      resume: true,
    };
    const grpo = RunSpec.fromPartial({
      ...common,
      stage: {
        $case: 'grpo',
        value: {
          services: { samplerAddresses: ['dns:///sampler:50051'], referenceAddress: 'reference:50052', rewardAddress: 'reward:50053' },
          rewardComponents: [
            { name: 'correct', weight: 1, rule: { $case: 'numericMatch', value: { extraction: { mode: ExtractionMode.LAST_NUMBER }, absTolerance: 1e-6 } } },
            { name: 'format', weight: 0.1, rule: { $case: 'format', value: { requiredTags: ['think', 'answer'] } } },
            { name: 'short', weight: 1, rule: { $case: 'lengthPenalty', value: { targetLength: 100, penaltyPerUnit: 0.01, maxPenalty: 0.5 } } },
          ],
          promptsPerStep: 16,
          groupSize: 8,
          advantageEstimator: AdvantageEstimator.DR_GRPO,
          kl: { coefficient: 0.04, estimator: KlEstimator.K3 },
          lossAggregation: LossAggregation.SEQUENCE_SUM_NORM,
          clipLow: 0.2,
          clipHigh: 0.28,
          sampling: { temperature: 1, maxNewTokens: 128, logprobs: true },
        },
      },
    });
    const ppo = RunSpec.fromPartial({
      ...common,
      stage: {
        $case: 'ppo',
        value: { gamma: 1, gaeLambda: 0.95, dualClipC: 3, kl: { coefficient: 0.05, adaptiveTarget: 6, adaptiveHorizon: 10000 }, staleRollouts: api.StaleRolloutPolicy.IMPORTANCE_CORRECT },
      },
    });
    const dpo = RunSpec.fromPartial({
      ...common,
      stage: { $case: 'dpo', value: { beta: 0.1, lossType: DpoLossType.IPO, reference: { $case: 'referenceAddress', value: 'ref:50052' } } },
    });
    for (const spec of [grpo, ppo, dpo]) {
      const back = RunSpec.decode(RunSpec.encode(spec).finish());
      assert.deepEqual(back, spec);
      assert.deepEqual(RunSpec.fromJSON(RunSpec.toJSON(back)), spec);
    }
    // Stage oneof: the JSON form names the case; unset optional fields stay unset.
    const json = RunSpec.toJSON(grpo) as { grpo?: { advantageEstimator?: string } };
    assert.equal(json.grpo?.advantageEstimator, 'ADVANTAGE_ESTIMATOR_DR_GRPO');
    const decodedPpo = RunSpec.decode(RunSpec.encode(ppo).finish());
    assert.equal(decodedPpo.stage?.$case === 'ppo' ? decodedPpo.stage.value.kl?.adaptiveTarget : 'wrong case', 6);
    assert.equal(decodedPpo.optimizer?.beta1, undefined);
  });

  test('RunEvent with a metrics map and a timestamp', () => {
    const ev = RunEvent.fromPartial({
      sequence: 17,
      runId: 'r',
      time: new Date('2025-01-02T03:04:05.678Z'),
      event: { $case: 'metrics', value: { step: 10, epoch: 0.5, samples: 640, tokens: 81920, split: 'train', values: { loss: 1.25, 'objective/kl': 0.031 } } },
    });
    const back = RunEvent.decode(RunEvent.encode(ev).finish());
    assert.deepEqual(back, ev);
    const done = RunEvent.fromPartial({ sequence: 18, event: { $case: 'finished', value: { state: RunState.SUCCEEDED, finalStep: 10 } } });
    assert.deepEqual(RunEvent.decode(RunEvent.encode(done).finish()), done);
  });

  test('enums keep their proto names on the JSON wire', () => {
    assert.equal(api.finishReasonToJSON(FinishReason.LENGTH), 'FINISH_REASON_LENGTH');
    assert.equal(api.runStateFromJSON('RUN_STATE_CANCELLED'), RunState.CANCELLED);
    assert.equal(api.dTypeFromJSON('DTYPE_BFLOAT16'), DType.DTYPE_BFLOAT16);
    assert.equal(api.weightsFormatFromJSON(2), WeightsFormat.LORA_ADAPTER);
  });
});

describe('service definitions', () => {
  test('paths and streaming kinds follow the protos', () => {
    const expect: [Record<string, { path: string; requestStream: boolean; responseStream: boolean }>, string, string, boolean, boolean][] = [
      [PolicySamplerService, 'generate', '/posttrain.v1.PolicySampler/Generate', false, true],
      [PolicySamplerService, 'computeLogProbs', '/posttrain.v1.PolicySampler/ComputeLogProbs', false, false],
      [PolicySamplerService, 'loadWeights', '/posttrain.v1.PolicySampler/LoadWeights', true, false],
      [PolicySamplerService, 'getInfo', '/posttrain.v1.PolicySampler/GetInfo', false, false],
      [ReferenceModelService, 'computeLogProbs', '/posttrain.v1.ReferenceModel/ComputeLogProbs', false, false],
      [ReferenceModelService, 'getInfo', '/posttrain.v1.ReferenceModel/GetInfo', false, false],
      [RewardScorerService, 'score', '/posttrain.v1.RewardScorer/Score', false, false],
      [RewardScorerService, 'getInfo', '/posttrain.v1.RewardScorer/GetInfo', false, false],
      [TrainerService, 'startRun', '/posttrain.v1.Trainer/StartRun', false, false],
      [TrainerService, 'getRun', '/posttrain.v1.Trainer/GetRun', false, false],
      [TrainerService, 'listRuns', '/posttrain.v1.Trainer/ListRuns', false, false],
      [TrainerService, 'cancelRun', '/posttrain.v1.Trainer/CancelRun', false, false],
      [TrainerService, 'watchRun', '/posttrain.v1.Trainer/WatchRun', false, true],
    ];
    for (const [service, method, path, requestStream, responseStream] of expect) {
      const def = service[method];
      assert.ok(def, `${path} missing`);
      assert.equal(def.path, path);
      assert.equal(def.requestStream, requestStream, `${path} requestStream`);
      assert.equal(def.responseStream, responseStream, `${path} responseStream`);
    }
    assert.equal(Object.keys(PolicySamplerService).length, 4);
    assert.equal(Object.keys(ReferenceModelService).length, 2);
    assert.equal(Object.keys(RewardScorerService).length, 2);
    assert.equal(Object.keys(TrainerService).length, 5);
  });

  test('a grpc-js server and client built from them talk over loopback (server and client streaming)', async () => {
    const received: number[] = [];
    const impl: PolicySamplerServer = {
      generate(call) {
        const n = call.request.n;
        for (let i = 0; i < n; i++) {
          call.write(GenerateResponse.fromPartial({ completions: [{ promptIndex: 0, sampleIndex: i, tokenIds: [5, i], finishReason: FinishReason.STOP, weightsVersion: 3 }] }));
        }
        call.end();
      },
      loadWeights(call, callback) {
        let version = 0;
        call.on('data', (chunk: WeightsChunk) => {
          if (chunk.chunk?.$case === 'header') version = chunk.chunk.value.version;
          else if (chunk.chunk?.$case === 'data') received.push(chunk.chunk.value.data.byteLength);
        });
        call.on('end', () => callback(null, WeightsAck.fromPartial({ version, bytesReceived: received.reduce((a, b) => a + b, 0) })));
      },
      computeLogProbs(_call, callback) {
        callback(null, { logprobs: api.encodeTensor(new Float32Array([-0.5, -1]), [1, 2]), completionLengths: [2], weightsVersion: 3 });
      },
      getInfo(_call, callback) {
        callback({ code: 9, details: 'no model loaded' } as ServiceError, null);
      },
    };
    const server = new Server();
    server.addService(PolicySamplerService, impl);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const client = new PolicySamplerClient(`127.0.0.1:${port}`, credentials.createInsecure());
    try {
      const completions = await new Promise<number[][]>((resolve, reject) => {
        const out: number[][] = [];
        client
          .generate(GenerateRequest.fromPartial({ n: 3 }))
          .on('data', (r: GenerateResponse) => out.push(...r.completions.map((c) => c.tokenIds)))
          .on('error', reject)
          .on('end', () => resolve(out));
      });
      assert.deepEqual(completions, [[5, 0], [5, 1], [5, 2]]);

      const ack = await new Promise<WeightsAck>((resolve, reject) => {
        const stream = client.loadWeights((err, res) => (err ? reject(err) : resolve(res)));
        stream.write(WeightsChunk.fromPartial({ chunk: { $case: 'header', value: { version: 7, format: WeightsFormat.SAFETENSORS_FULL, totalBytes: 5 } } }));
        stream.write(WeightsChunk.fromPartial({ chunk: { $case: 'data', value: { offset: 0, data: Buffer.from([1, 2, 3]) } } }));
        stream.write(WeightsChunk.fromPartial({ chunk: { $case: 'data', value: { offset: 3, data: Buffer.from([4, 5]) } } }));
        stream.end();
      });
      assert.deepEqual(ack, WeightsAck.fromPartial({ version: 7, bytesReceived: 5 }));

      const lp = await new Promise<api.LogProbsResponse>((resolve, reject) =>
        client.computeLogProbs(api.LogProbsRequest.fromPartial({}), (err, res) => (err ? reject(err) : resolve(res))),
      );
      assert.deepEqual([...api.decodeTensorAs(lp.logprobs ?? api.Tensor.fromPartial({}), DType.DTYPE_FLOAT32, 'logprobs').data], [-0.5, -1]);

      const err = await new Promise<ServiceError>((resolve) => client.getInfo({}, (e) => resolve(e as ServiceError)));
      assert.equal(err.code, 9); // FAILED_PRECONDITION
    } finally {
      client.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    }
  });
});

test('index.ts re-exports every generated value except map-entry helpers and Timestamp', () => {
  const genRoot = join(__dirname, 'gen', 'posttrain', 'v1');
  const missing: string[] = [];
  for (const file of readdirSync(genRoot)) {
    const src = readFileSync(join(genRoot, file), 'utf8');
    for (const m of src.matchAll(/^export (?:const|enum|function) ([A-Za-z0-9_]+)/gm)) {
      const name = m[1] ?? '';
      if (name.includes('_')) continue; // Run_MetricsSummaryEntry & co: internal to map fields
      if (!(name in api)) missing.push(`${file}: ${name}`);
    }
  }
  assert.deepEqual(missing, []);
});
