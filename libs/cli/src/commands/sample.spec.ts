import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createModelConfig, initModelDir } from '@posttrain/model';
import { buildBuiltinTokenizerFiles, createBuiltinTokenizer } from '@posttrain/tokenizer';
import { UsageError } from '../command';
import { startLocalServices, type LocalServiceGroup } from '../local-services';
import { captureIO } from '../test-io';
import { sampleCommand } from './sample';

interface Line { sample: number; text: string; token_ids: number[]; logprobs: number[]; sum_logprob: number; finish_reason: string; weights_version: number }

describe('posttrain sample', { timeout: 120_000 }, () => {
  let dir: string;
  let group: LocalServiceGroup | undefined;

  before(async () => {
    await tf.setBackend('cpu');
    dir = join(await mkdtemp(join(tmpdir(), 'posttrain-sample-')), 'model');
    const files = buildBuiltinTokenizerFiles();
    const config = { ...createModelConfig({ vocabSize: 101, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 64, eosTokenId: 2 }), initializerRange: 0.4 };
    await initModelDir(dir, config, { seed: 3, assets: { 'tokenizer.json': JSON.stringify(files.tokenizerJson), 'tokenizer_config.json': JSON.stringify(files.tokenizerConfig) } });
  });
  after(async () => group?.stop());

  const run = async (argv: string[]) => {
    const io = captureIO();
    const code = await sampleCommand.run(argv, io);
    assert.equal(code, 0, io.err());
    return io.out().trim().split('\n').map((l) => JSON.parse(l) as Line);
  };

  test('in-process: n completions with one log-prob per token; the same seed prints the same completions', async () => {
    const argv = ['--model', dir, '--prompt', '12+7=', '--n', '3', '--temperature', '0.9', '--max-new-tokens', '8', '--seed', '5', '--json'];
    const a = await run(argv);
    assert.deepEqual(a.map((c) => c.sample), [0, 1, 2]);
    const tok = createBuiltinTokenizer();
    for (const c of a) {
      assert.equal(c.logprobs.length, c.token_ids.length);
      assert.ok(c.token_ids.length >= 1 && c.token_ids.length <= 8);
      assert.ok(Math.abs(c.sum_logprob - c.logprobs.reduce((s, x) => s + x, 0)) <= 1e-9);
      assert.equal(c.text, tok.decode(c.token_ids, { skipSpecialTokens: true }));
      assert.ok(c.logprobs.every((x) => x <= 0));
      assert.equal(c.finish_reason, c.token_ids.at(-1) === 2 ? 'stop' : 'length');
    }
    assert.deepEqual(await run(argv), a);
  });

  test('--addr: a running sampler with the same model prints the same completions', async () => {
    group = await startLocalServices([{ name: 'policy-sampler', label: 'sampler', args: ['--model', dir] }], { host: '127.0.0.1', startupTimeoutMs: 60_000 });
    const common = ['--prompt', 'hi', '--chat', '--n', '2', '--max-new-tokens', '6', '--seed', '9', '--json'];
    const local = await run(['--model', dir, ...common]);
    const remote = await run(['--addr', group.services[0].address, ...common]);
    assert.deepEqual(remote.map((c) => c.token_ids), local.map((c) => c.token_ids));
    remote.forEach((c, i) => c.logprobs.forEach((x, j) => assert.ok(Math.abs(x - local[i].logprobs[j]) <= 1e-4)));
    const io = captureIO();
    await sampleCommand.run(['--model', dir, '--prompt', 'ab', '--max-new-tokens', '3', '--temperature', '0'], io);
    assert.match(io.out(), /^--- sample 0: \d tokens, finish (stop|length), sum log-prob -?\d+\.\d{4}, weights version 0\n/);
    assert.match(io.out(), /\nlog-probs: (-?\d+\.\d{4} ?)+\n/);
  });

  test('usage errors name what is wrong', async () => {
    const cases: [string[], RegExp][] = [
      [['--prompt', 'x'], /exactly one of --model DIR .* or --addr/],
      [['--model', dir, '--addr', 'h:1', '--prompt', 'x'], /exactly one of/],
      [['--model', dir], /missing --prompt/],
      [['--model', '/no/such/dir', '--prompt', 'x'], /--model \/no\/such\/dir: .*config\.json/],
    ];
    for (const [argv, re] of cases) await assert.rejects(sampleCommand.run(argv, captureIO()), (e: unknown) => e instanceof UsageError && re.test(e.message), String(re));
  });
});
