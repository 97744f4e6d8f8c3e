import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { protoPath as healthProto } from 'grpc-health-check';
import { startLocalServices, type LocalServiceGroup } from '@posttrain/cli';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createModelConfig, initModelDir } from '@posttrain/model';
import { protosDir } from '@posttrain/rpc';
import { buildBuiltinTokenizerFiles, createBuiltinTokenizer } from '@posttrain/tokenizer';

// Debian's python3-grpcio and protobuf belong to /usr/bin/python3, not to the
// python3 first on PATH. CI installs them (.ci/run); this test never skips.
const PYTHON = '/usr/bin/python3';

describe('a Python client calls every service', { timeout: 240_000 }, () => {
  let group: LocalServiceGroup;
  const gen = mkdtempSync(join(tmpdir(), 'posttrain-interop-'));
  let modelDir = '';

  before(async () => {
    // A tiny model for the sampler (the built-in tokenizer's vocabulary), so the client can generate.
    await tf.setBackend('cpu');
    modelDir = join(gen, 'model');
    const files = buildBuiltinTokenizerFiles();
    await initModelDir(modelDir, createModelConfig({ vocabSize: 101, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 64, eosTokenId: 2 }), {
      seed: 1,
      assets: { 'tokenizer.json': JSON.stringify(files.tokenizerJson), 'tokenizer_config.json': JSON.stringify(files.tokenizerConfig) },
    });
    group = await startLocalServices(
      [
        { name: 'policy-sampler', label: 'policy-sampler', args: ['--model', modelDir] },
        { name: 'reference', label: 'reference', args: [] },
        { name: 'reward', label: 'reward', args: [] },
        { name: 'trainer', label: 'trainer', args: ['--runs-dir', join(gen, 'runs')] },
      ],
      { host: '127.0.0.1', startupTimeoutMs: 120_000 },
    );
  });
  after(async () => {
    await group?.stop();
    rmSync(gen, { recursive: true, force: true });
  });

  test('health, one method per service (a rule-based Score included), Generate then Score of the completions, and an INVALID_ARGUMENT, from Python', () => {
    const addr = (name: string) => group.services.find((s) => s.name === name)!.address;
    const r = spawnSync(
      PYTHON,
      [join(__dirname, 'posttrain_client.py'), '--protos', protosDir(), '--gen', gen, '--health-proto', healthProto, '--sampler', addr('policy-sampler'), '--reference', addr('reference'), '--reward', addr('reward'), '--trainer', addr('trainer')],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 0, `python client failed:\n${r.stderr}\n${r.stdout}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.deepEqual(out.health, { 'policy-sampler': 'SERVING', reference: 'SERVING', reward: 'SERVING', trainer: 'SERVING' });
    assert.equal(out.calls['sampler.GetInfo'].weights_version, 0);
    assert.ok(out.calls['sampler.GetInfo'].max_new_tokens > 0);
    assert.ok(out.calls['reference.GetInfo'].replica_id.length > 0);
    assert.ok(out.calls['reward.GetInfo'].max_batch_items > 0);
    assert.ok(out.calls['reward.GetInfo'].supported_rules.includes('numeric_match'));
    // Hand-computed: the right answer earns 1 + 0.25, the wrong one only the 0.25 format bonus.
    assert.deepEqual(out.calls['reward.Score'], { right: { reward: 1.25, components: { correct: 1, format: 0.25 } }, wrong: { reward: 0.25, components: { correct: 0, format: 0.25 } } });
    // Generate: two completions of the tokenised prompt, one log-prob per token, text = decoded tokens.
    const tok = createBuiltinTokenizer();
    const completions = out.calls['sampler.Generate'] as { sample_index: number; text: string; token_ids: number[]; prompt_token_ids: number[]; logprobs: number[]; finish_reason: string; weights_version: number }[];
    assert.deepEqual(completions.map((c) => c.sample_index), [0, 1]);
    for (const c of completions) {
      assert.deepEqual(c.prompt_token_ids, tok.encode('12+7='));
      assert.ok(c.token_ids.length >= 1 && c.token_ids.length <= 8);
      assert.equal(c.logprobs.length, c.token_ids.length);
      assert.ok(c.logprobs.every((x) => x <= 0));
      assert.equal(c.text, tok.decode(c.token_ids, { skipSpecialTokens: true }));
      assert.equal(c.finish_reason, c.token_ids.at(-1) === 2 ? 'FINISH_REASON_STOP' : 'FINISH_REASON_LENGTH');
      assert.equal(c.weights_version, 0);
      // Score of the completion: -0.1 per character beyond 2 (hand rule of LengthPenaltyRule).
      const want = -0.1 * Math.max(0, [...c.text].length - 2);
      assert.ok(Math.abs(out.calls['reward.Score.generated'][`sample${c.sample_index}`] - want) <= 1e-9, `sample ${c.sample_index}: ${c.text}`);
    }
    assert.equal(out.calls['trainer.ListRuns'].runs, 0);
    assert.equal(out.errors['reference.ComputeLogProbs.empty'].code, 'INVALID_ARGUMENT');
    assert.match(out.errors['reference.ComputeLogProbs.empty'].details, /^sequences: empty/);
    assert.equal(out.errors['reference.ComputeLogProbs.negative_id'].code, 'INVALID_ARGUMENT');
    assert.match(out.errors['reference.ComputeLogProbs.negative_id'].details, /^sequences\[0\]\.completion_ids\[1\]: got -5/);
  });
});
