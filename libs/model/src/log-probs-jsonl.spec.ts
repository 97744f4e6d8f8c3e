import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createModelConfig } from './model-config';
import { modelFromHfTensors } from './llama-model';
import type { LlamaModel } from './llama-model';
import { logProbsJsonlFile, logProbsJsonlText } from './log-probs-jsonl';
import { makeTestWeights, referenceLogProbs } from './test-reference';
import type { HfWeights } from './test-reference';

const config = createModelConfig({ vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2 });
const heads = { lm: true, score: false };
let model: LlamaModel;
let w: HfWeights;
let root = '';

before(async () => {
  await tf.setBackend('cpu');
  w = makeTestWeights(config, heads, 8);
  model = modelFromHfTensors(config, heads, w, 'test');
  root = await mkdtemp(join(tmpdir(), 'model-jsonl-'));
});
after(async () => rm(root, { recursive: true, force: true }));

describe('log-probs for JSONL', () => {
  test('input_ids, prompt/completion ids and text lines are scored like the reference (tol 1e-4)', () => {
    // A toy tokenizer: each character c -> (code of c) mod 32.
    const encode = (s: string) => [...s].map((ch) => ch.charCodeAt(0) % 32);
    const input = [
      JSON.stringify({ input_ids: [1, 2, 3, 4], id: 'a' }),
      '',
      JSON.stringify({ prompt_ids: [5, 6], completion_ids: [7, 8, 9] }),
      JSON.stringify({ prompt: 'ab', completion: 'cd' }),
    ].join('\n');
    const out = logProbsJsonlText(model, input, 'in.jsonl', { encode, batchSize: 2 }).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(out.length, 3);
    assert.equal(out[0].id, 'a');
    const check = (got: number[], want: number[]) => {
      assert.equal(got.length, want.length);
      got.forEach((x, i) => assert.ok(Math.abs(x - want[i]) <= 1e-4, `${x} vs ${want[i]}`));
    };
    check(out[0].logprobs, referenceLogProbs(config, w, [1, 2, 3, 4]));
    check(out[1].logprobs, referenceLogProbs(config, w, [5, 6, 7, 8, 9]).slice(1)); // tokens 7, 8, 9
    check(out[2].logprobs, referenceLogProbs(config, w, encode('abcd')).slice(1)); // tokens of "cd"
    assert.ok(Math.abs(out[1].sum_logprob - out[1].logprobs.reduce((a: number, b: number) => a + b, 0)) < 1e-9);
  });

  test('bad lines name file, line and field', () => {
    assert.throws(() => logProbsJsonlText(model, '{"input_ids": [1, 2]}\n{"input_ids": [1, 40]}', 'x.jsonl'), /x\.jsonl:2: "input_ids"\[1\] is 40; expected a token id in \[0, 32\)/);
    assert.throws(() => logProbsJsonlText(model, '{"text": "hi"}', 'x.jsonl'), /x\.jsonl:1: "text" needs a tokenizer/);
    assert.throws(() => logProbsJsonlText(model, '{oops', 'x.jsonl'), /x\.jsonl:1: invalid JSON/);
    assert.throws(() => logProbsJsonlText(model, '{"prompt_ids": [1], "completion_ids": []}', 'x.jsonl'), /x\.jsonl:1: the completion is empty/);
  });

  test('file variant writes one output line per input line', async () => {
    await writeFile(join(root, 'in.jsonl'), '{"input_ids":[3,4,5]}\n{"input_ids":[6,7]}\n');
    const n = await logProbsJsonlFile(model, join(root, 'in.jsonl'), join(root, 'out.jsonl'));
    assert.equal(n, 2);
    const lines = (await readFile(join(root, 'out.jsonl'), 'utf8')).trim().split('\n');
    assert.deepEqual(lines.map((l) => JSON.parse(l).logprobs.length), [2, 1]);
  });
});
