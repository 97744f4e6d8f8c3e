import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { loadModel, modelToHfTensors, padBatch, sequenceScores } from '@posttrain/model';
import { FinishReason, GenerateRequest, PolicySamplerService, ReferenceModelService, RewardScorerService, WeightsFormat, weightsChunks } from '@posttrain/proto';
import { checkHealth, createClient, status, type RpcClient } from '@posttrain/rpc';
import { serializeSafetensors } from '@posttrain/safetensors';
import { createBuiltinTokenizer } from '@posttrain/tokenizer';
import { startLocalServices, type LocalServiceGroup } from '@posttrain/cli';
import { generateAll, logProbRows, tinyConfig, writeTinyModel } from './serving-support';

// The serving tier as deployed: sampler, reference and reward as separate processes on loopback, real gRPC.
describe('serving tier end to end', { timeout: 240_000 }, () => {
  let group: LocalServiceGroup;
  let policyDir: string;
  let updateDir: string;
  let rmDir: string;
  let uploadDir: string;
  let sampler: RpcClient<typeof PolicySamplerService>;
  let small: RpcClient<typeof PolicySamplerService>;
  let reference: RpcClient<typeof ReferenceModelService>;
  let reward: RpcClient<typeof RewardScorerService>;
  const addr = (label: string) => group.services.find((s) => s.label === label)!.address;

  before(async () => {
    await tf.setBackend('cpu'); // this process only writes models and checks numbers; the services pick their own backend
    uploadDir = await mkdtemp(join(tmpdir(), 'posttrain-uploads-'));
    [policyDir, updateDir, rmDir] = await Promise.all([writeTinyModel(7), writeTinyModel(8), writeTinyModel(5, tinyConfig('sequence-classification'))]);
    group = await startLocalServices(
      [
        // Uploads above 1000 bytes (every real one here) go through the file path (--upload-dir), the garbage ones stay in memory.
        { name: 'policy-sampler', label: 'sampler', args: ['--model', policyDir, '--max-new-tokens', '64', '--upload-memory-bytes', '1000', '--upload-dir', uploadDir] },
        { name: 'policy-sampler', label: 'small', args: ['--model', policyDir, '--max-batch-sequences', '1', '--max-queue-depth', '1', '--max-new-tokens', '100'] },
        { name: 'reference', label: 'reference', args: ['--model', policyDir] },
        { name: 'reward', label: 'reward', args: ['--reward-model', rmDir] },
      ],
      { host: '127.0.0.1', startupTimeoutMs: 120_000 },
    );
    sampler = createClient(PolicySamplerService, addr('sampler'), { maxAttempts: 1 });
    small = createClient(PolicySamplerService, addr('small'), { maxAttempts: 1 });
    reference = createClient(ReferenceModelService, addr('reference'), { maxAttempts: 1 });
    reward = createClient(RewardScorerService, addr('reward'), { maxAttempts: 1 });
  });
  after(async () => {
    for (const c of [sampler, small, reference, reward]) c?.close();
    await group?.stop();
  });

  const gen = (partial: Parameters<typeof GenerateRequest.fromPartial>[0]) => GenerateRequest.fromPartial(partial);
  const text = (value: string) => ({ input: { $case: 'text' as const, value } });
  const isCode = (code: status, details?: RegExp) => (e: ServiceError) => e.code === code && (!details || details.test(e.details));

  test('GetInfo describes the loaded model', async () => {
    const info = await sampler.unary('getInfo', {});
    assert.equal(info.model?.vocabSize, 101);
    assert.equal(info.model?.maxSequenceLength, 128);
    assert.equal(info.model?.modelPath, policyDir);
    assert.ok(['wasm', 'cpu', 'tensorflow'].includes(info.model!.backend), info.model!.backend);
    assert.equal(info.weightsVersion, 0);
    const ref = await reference.unary('getInfo', {});
    assert.equal(ref.model?.numParameters, info.model?.numParameters);
    const rinfo = await reward.unary('getInfo', {});
    assert.ok(rinfo.supportedRules.includes('reward_model'));
  });

  test('consistency: Generate log-probs equal ComputeLogProbs on the sampler and on the reference (tol 1e-4)', async () => {
    const temperature = 0.8;
    const completions = await generateAll(sampler, gen({ prompts: [text('12+7='), { input: { $case: 'messages', value: { messages: [{ role: 'user', content: 'hi' }] } } }], n: 3, sampling: { temperature, maxNewTokens: 12, seed: 11, logprobs: true } }));
    assert.equal(completions.length, 6);
    const sequences = completions.map((c) => ({ promptIds: c.promptTokenIds, completionIds: c.tokenIds }));
    const fromSampler = logProbRows(await sampler.unary('computeLogProbs', { sequences, temperature, returnEntropies: false }));
    const fromReference = logProbRows(await reference.unary('computeLogProbs', { sequences, temperature, returnEntropies: true }));
    let compared = 0;
    completions.forEach((c, i) => {
      assert.equal(c.logprobs.length, c.tokenIds.length);
      c.logprobs.forEach((lp, j) => {
        assert.ok(Math.abs(lp - fromSampler[i][j]) <= 1e-4, `sampler: completion ${i} token ${j}: ${lp} vs ${fromSampler[i][j]}`);
        assert.ok(Math.abs(lp - fromReference[i][j]) <= 1e-4, `reference: completion ${i} token ${j}: ${lp} vs ${fromReference[i][j]}`);
        compared++;
      });
    });
    assert.ok(compared >= 6, `compared ${compared} tokens`);
  });

  test('reproducibility: the same seed and request give the same completions, also under concurrent load', async () => {
    const req = gen({ prompts: [text('ab'), text('xyz')], n: 2, sampling: { temperature: 1, topK: 30, topP: 0.9, maxNewTokens: 16, seed: 1234, logprobs: true } });
    const first = await generateAll(sampler, req);
    const noise = [1, 2, 3].map((k) => generateAll(sampler, gen({ prompts: [text('noise' + k)], n: 2, sampling: { maxNewTokens: 20, seed: k } })));
    const second = await generateAll(sampler, req);
    await Promise.all(noise);
    assert.deepEqual(second.map((c) => [c.tokenIds, c.text, c.finishReason]), first.map((c) => [c.tokenIds, c.text, c.finishReason]));
    const other = await generateAll(sampler, gen({ ...req, sampling: { ...req.sampling!, seed: 4321 } }));
    assert.notDeepEqual(other.map((c) => c.tokenIds), first.map((c) => c.tokenIds));
  });

  test('batching: concurrent requests share forward passes (GetInfo mean batch size > 1)', async () => {
    await Promise.all(Array.from({ length: 8 }, (_, k) => generateAll(sampler, gen({ prompts: [text(`p${k}`)], sampling: { maxNewTokens: 24, seed: k } }))));
    const info = await sampler.unary('getInfo', {});
    assert.ok(info.batch!.meanBatchSize > 1, `mean batch size ${info.batch!.meanBatchSize}`);
    assert.ok(info.batch!.generatedTokensTotal > 0);
    assert.ok(info.batch!.tokensPerSecond > 0);
  });

  test('queue: a full queue answers RESOURCE_EXHAUSTED', async () => {
    // One sequence per batch and one waiting request: the 8-sample request holds the queue while its samples run one by one.
    const hog = generateAll(small, gen({ prompts: [text('a')], n: 8, sampling: { maxNewTokens: 90, seed: 3 } }));
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(generateAll(small, gen({ prompts: [text('b')], sampling: { maxNewTokens: 4 } })), isCode(status.RESOURCE_EXHAUSTED, /queue is full/));
    assert.equal((await hog).length, 8);
    assert.equal((await generateAll(small, gen({ prompts: [text('b')], sampling: { maxNewTokens: 4 } }))).length, 1, 'serves again once drained');
  });

  test('reward: a reward-model score matches the scalar head computed directly (tol 1e-4), combined with a rule', async () => {
    const items = [
      { id: 'a', prompt: '12+7=', promptMessages: [], completion: '19', completionTokenIds: [] },
      { id: 'b', prompt: '', promptMessages: [{ role: 'user', content: 'hi' }], completion: 'hello', completionTokenIds: [] },
    ];
    const res = await reward.unary('score', {
      items,
      components: [
        { name: 'rm', weight: 1, rule: { $case: 'rewardModel', value: { expectedModelId: '', shift: 0, scale: 0 } } },
        { name: 'len', weight: 0.5, rule: { $case: 'lengthPenalty', value: { targetLength: 2, penaltyPerUnit: 1, maxPenalty: 0, unit: 2 } } },
      ],
    });
    const rm = await loadModel(rmDir);
    const tok = createBuiltinTokenizer();
    const inputs = [tok.encode('12+7=19'), tok.encodeChat([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }]).ids];
    const direct = sequenceScores(rm, padBatch(inputs, 0));
    const want = Array.from(direct.dataSync());
    direct.dispose();
    rm.dispose();
    res.scores.forEach((s, i) => {
      assert.ok(Math.abs(s.components[0].value - want[i]) <= 1e-4, `${s.id}: ${s.components[0].value} vs ${want[i]}`);
      // characters beyond 2 cost 1 each: "19" -> 0, "hello" -> -3
      assert.equal(s.components[1].value, [0, -3][i]);
      assert.ok(Math.abs(s.reward - (want[i] + 0.5 * [0, -3][i])) <= 1e-4);
    });
  });

  test('weight updates: corrupted, truncated and mismatched uploads are refused and the old weights keep serving; a good one changes outputs and version', async () => {
    const probe = gen({ prompts: [text('12+7=')], sampling: { temperature: 0, maxNewTokens: 10, logprobs: true } });
    const before = await generateAll(sampler, probe);
    const good = await readFile(join(updateDir, 'model.safetensors'));
    const chunks = (bytes: Uint8Array, version: number) => [...weightsChunks(bytes, { version, format: WeightsFormat.SAFETENSORS_FULL }, 64 * 1024)];
    // corrupted: the checksum announces other bytes
    const corrupted = chunks(good, 1);
    const head = corrupted[0].chunk;
    assert.ok(head?.$case === 'header');
    corrupted[0] = { chunk: { $case: 'header', value: { ...head.value, sha256: 'f'.repeat(64) } } };
    await assert.rejects(sampler.clientStream('loadWeights', corrupted), isCode(status.INVALID_ARGUMENT, /^header\.sha256: /));
    // truncated: the stream ends before total_bytes
    await assert.rejects(sampler.clientStream('loadWeights', chunks(good, 1).slice(0, -1)), isCode(status.INVALID_ARGUMENT, /^header\.total_bytes: announced/));
    // mismatched: a tensor of the wrong shape, and a wrong name
    const m = await loadModel(updateDir);
    const tensors = modelToHfTensors(m);
    m.dispose();
    const wrongShape = new Map(tensors).set('model.norm.weight', { shape: [16], data: new Float32Array(16) });
    await assert.rejects(sampler.clientStream('loadWeights', chunks(serializeSafetensors(wrongShape), 1)), isCode(status.INVALID_ARGUMENT, /^data: tensor model\.norm\.weight has shape \[16\], expected \[32\]/));
    const renamed = new Map(tensors);
    renamed.set('model.final_norm.weight', renamed.get('model.norm.weight')!);
    renamed.delete('model.norm.weight');
    await assert.rejects(sampler.clientStream('loadWeights', chunks(serializeSafetensors(renamed), 1)), isCode(status.INVALID_ARGUMENT, /^data: missing tensor model\.norm\.weight/));
    let info = await sampler.unary('getInfo', {});
    assert.equal(info.weightsVersion, 0);
    assert.deepEqual((await generateAll(sampler, probe)).map((c) => c.tokenIds), before.map((c) => c.tokenIds), 'old weights keep serving');
    // good upload
    const ack = await sampler.clientStream('loadWeights', chunks(good, 1));
    assert.equal(ack.version, 1);
    assert.equal(ack.duplicate, false);
    assert.equal(ack.bytesReceived, good.byteLength);
    assert.equal(ack.tensorsLoaded, tensors.size);
    const after = await generateAll(sampler, probe);
    assert.equal(after[0].weightsVersion, 1);
    assert.notDeepEqual(after[0].logprobs, before[0].logprobs);
    // same version and checksum again: harmless; same version, other bytes: refused
    assert.equal((await sampler.clientStream('loadWeights', chunks(good, 1))).duplicate, true);
    await assert.rejects(sampler.clientStream('loadWeights', chunks(serializeSafetensors(tensors), 1)), isCode(status.FAILED_PRECONDITION, /not newer/));
    info = await sampler.unary('getInfo', {});
    assert.equal(info.weightsVersion, 1);
    assert.equal(info.weightsFormat, WeightsFormat.SAFETENSORS_FULL);
    await assert.rejects(generateAll(sampler, gen({ ...probe, minWeightsVersion: 2 })), isCode(status.FAILED_PRECONDITION, /min_weights_version/));
    assert.deepEqual(await readdir(uploadDir), [], 'every upload written to --upload-dir was removed, refused or applied');
  });

  test('bad input: every RPC answers INVALID_ARGUMENT naming the field, and the services keep serving', async () => {
    const bad: [() => Promise<unknown>, RegExp][] = [
      [() => generateAll(sampler, gen({ prompts: [{ input: { $case: 'tokenIds', value: { ids: [1, 101] } } }] })), /^prompts\[0\]\.token_ids\.ids\[1\]: got 101/],
      [() => generateAll(sampler, gen({ prompts: [text('a')], sampling: { maxNewTokens: 65 } })), /^sampling\.max_new_tokens: got 65/],
      [() => generateAll(sampler, gen({ prompts: [text('a'.repeat(130))] })), /^prompts\[0\]: 130 prompt tokens/],
      [() => sampler.unary('computeLogProbs', { sequences: [{ promptIds: [1], completionIds: [101] }], returnEntropies: false }), /^sequences\[0\]\.completion_ids\[0\]: got 101/],
      [() => sampler.unary('computeLogProbs', { sequences: [{ promptIds: [1], completionIds: [2] }], temperature: 0, returnEntropies: false }), /^temperature: got 0/],
      [() => sampler.clientStream('loadWeights', [{ chunk: { $case: 'header', value: { version: 0, format: WeightsFormat.SAFETENSORS_FULL, totalBytes: 4, sha256: '0'.repeat(64), adapterConfigJson: '', manifest: [] } } }]), /^header\.version: got 0/],
      [() => sampler.clientStream('loadWeights', [{ chunk: { $case: 'data', value: { offset: 0, data: Buffer.from([1]) } } }]), /^chunk\[0\]\.data: data before the header/],
      [() => reference.unary('computeLogProbs', { sequences: [{ promptIds: new Array(120).fill(5), completionIds: new Array(20).fill(6) }], returnEntropies: false }), /^sequences\[0\]: prompt \+ completion is 140 tokens/],
      [() => reward.unary('score', { items: [{ id: 'a', prompt: 'p', promptMessages: [], completion: 'c', completionTokenIds: [] }], components: [{ name: 'x', weight: 1, rule: { $case: 'regex', value: { pattern: '(', flags: '', fullMatch: false, negate: false } } }] }), /^components\[0\]\.regex\.pattern: /],
      [() => reward.unary('score', { items: [{ id: 'a', prompt: 'p', promptMessages: [], completion: 'y'.repeat(200), completionTokenIds: [] }], components: [{ name: 'rm', weight: 1, rule: { $case: 'rewardModel', value: { expectedModelId: '', shift: 0, scale: 0 } } }] }), /^items\[0\]: prompt \+ completion is 201 tokens/],
    ];
    for (const [call, details] of bad) {
      await assert.rejects(call(), (e: ServiceError) => {
        assert.equal(e.code, status.INVALID_ARGUMENT, e.details);
        assert.match(e.details, details);
        return true;
      });
    }
    for (const label of ['sampler', 'reference', 'reward']) assert.equal(await checkHealth(addr(label)), 'SERVING', label);
    const ok = await generateAll(sampler, gen({ prompts: [text('a')], sampling: { maxNewTokens: 3, temperature: 0 } }));
    assert.ok([FinishReason.STOP, FinishReason.LENGTH].includes(ok[0].finishReason));
  });
});
