import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@posttrain/backend';
import { initModelDir, loadModel } from '@posttrain/model';
import { captureIO } from '../test-io';
import { modelBenchCommand } from './model';

const dir = mkdtempSync(join(tmpdir(), 'cli-bench-'));
const modelDir = join(dir, 'tiny');

before(async () => {
  await initBackend({ backend: 'cpu', logger: { info: () => undefined } });
  await initModelDir(modelDir, { vocabSize: 40, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, numKvHeads: 1, maxPositionEmbeddings: 64, tieWordEmbeddings: true }, { seed: 1 });
});

test('model bench --model times that directory\'s shape at the given batch and length', async () => {
  const io = captureIO();
  const code = await modelBenchCommand.run(['--model', modelDir, '--batch-size', '3', '--seq-len', '7', '--steps', '1', '--backend', 'cpu', '--json'], io);
  assert.equal(code, 0, io.err());
  const r = JSON.parse(io.out()) as { parameters: number; train: { tokensPerStep: number; tokensPerSecond: number } };
  const m = await loadModel(modelDir);
  assert.equal(r.parameters, m.parameterCount(), 'the directory\'s parameter count (tied embeddings, grouped KV heads)');
  m.dispose();
  assert.equal(r.train.tokensPerStep, 21);
  assert.ok(r.train.tokensPerSecond > 0);
});

test('model bench --model rejects a directory without config.json, naming the flag', async () => {
  await assert.rejects(modelBenchCommand.run(['--model', dir, '--json'], captureIO()), /--model \/.*cli-bench-\w+: not a model directory \(no config\.json\)/);
  await assert.rejects(modelBenchCommand.run(['--batch-size', '0'], captureIO()), /batch-size/);
});
