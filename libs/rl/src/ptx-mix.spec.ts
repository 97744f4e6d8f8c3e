import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@posttrain/backend';
import type { SftBatch } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { forwardHidden, lmLogits, loadModel } from '@posttrain/model';
import { createLogger } from '@posttrain/telemetry';
import { loadTokenizer } from '@posttrain/tokenizer';
import { PtxMix } from './ptx-mix';
import { RlConfigError } from './rl-run-config';
import { writeTinyPolicy } from './test-support';

/** Mean over the labelled tokens of -log softmax(logits)[label], in float64 from the logits (an independent path to the NLL). */
function handNll(model: LlamaModel, batch: SftBatch): number {
  const { batchSize: B, seqLen: T } = batch;
  const V = model.config.vocabSize;
  const logits = tf.tidy(() => {
    const { hidden } = forwardHidden(model, { ids: batch.inputIds, batch: B, length: T, mask: Uint8Array.from(batch.attentionMask), positions: batch.positionIds });
    return lmLogits(model, hidden).dataSync() as Float32Array;
  });
  let sum = 0;
  let count = 0;
  for (let i = 0; i < B * T; i++) {
    if (!batch.labelMask[i]) continue;
    const row = logits.subarray(i * V, (i + 1) * V);
    const max = Math.max(...row);
    let z = 0;
    for (const x of row) z += Math.exp(x - max);
    sum += max + Math.log(z) - row[batch.labels[i]];
    count++;
  }
  return sum / count;
}

describe('PPO-ptx: the pretraining mix', () => {
  let modelDir: string;
  let model: LlamaModel;
  let tokenizer: Awaited<ReturnType<typeof loadTokenizer>>;
  let corpus: string;
  const texts = Array.from({ length: 10 }, (_, i) => `To add ${i} and ${i + 3}: ${i} + ${i + 3} = ${2 * i + 3}.`);

  before(async () => {
    await initBackend({ logger: createLogger({ service: 'test', level: 'warn' }) });
    modelDir = await writeTinyPolicy(7);
    model = await loadModel(modelDir);
    tokenizer = await loadTokenizer(modelDir);
    corpus = join(await mkdtemp(join(tmpdir(), 'posttrain-ptx-')), 'corpus.jsonl');
    await writeFile(corpus, texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  });
  after(() => model.dispose());

  test('the loss is ptx_coef x the mean next-token NLL over every token of the {"text"} rows (float64 by hand, 1e-5 relative)', async () => {
    const mix = await PtxMix.open({ coefficient: 0.25, datasetPath: corpus, batchSize: 4, maxLength: 512 }, 4, tokenizer, 1);
    try {
      const batch = await mix.next();
      assert.equal(batch.batchSize, 4);
      // Every token after the first of each document is a target (language modelling, no prompt masked).
      let labelled = 0;
      for (const m of batch.labelMask) labelled += m;
      let real = 0;
      for (const m of batch.attentionMask) real += m;
      assert.equal(labelled, real - 4);
      const nll = handNll(model, batch);
      const out = tf.tidy(() => mix.loss(model, batch).loss.dataSync()[0]);
      assert.ok(Math.abs(out - 0.25 * nll) <= 1e-5 * 0.25 * nll, `ptx loss ${out} vs 0.25 x ${nll}`);
      const { metrics } = tf.tidy(() => {
        const r = mix.loss(model, batch);
        return { metrics: r.metrics };
      });
      assert.ok(Math.abs(metrics['loss/ptx'] - nll) <= 1e-5 * nll, `loss/ptx ${metrics['loss/ptx']} is the unweighted NLL ${nll}`);
      assert.ok(metrics['ptx/mean_token_accuracy'] >= 0 && metrics['ptx/mean_token_accuracy'] <= 1);
      // Its gradient reaches the policy's weights.
      const { grads, value } = tf.variableGrads(() => mix.loss(model, batch).loss);
      const norms = Object.values(grads).map((g) => tf.norm(g).dataSync()[0]);
      assert.ok(norms.some((n) => n > 0), 'some weight has a nonzero ptx gradient');
      tf.dispose([value, ...Object.values(grads)]);
    } finally {
      await mix.close();
    }
  });

  test('batches run epoch after epoch, and a mix opened at a saved position goes on with the same batches', async () => {
    const config = { coefficient: 1, datasetPath: corpus, batchSize: null, maxLength: 512 };
    const first = await PtxMix.open(config, 5, tokenizer, 3);
    const seen: number[][] = [];
    for (let i = 0; i < 3; i++) seen.push((await first.next()).lines.flat());
    // 10 documents in batches of 5: two batches an epoch, each document once per epoch.
    assert.deepEqual([...seen[0], ...seen[1]].sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i + 1));
    const position = first.position();
    assert.equal(position.epoch, 1);
    const expected = [(await first.next()).lines.flat(), (await first.next()).lines.flat()];
    await first.close();
    const resumed = await PtxMix.open(config, 5, tokenizer, 3, position);
    try {
      assert.deepEqual([(await resumed.next()).lines.flat(), (await resumed.next()).lines.flat()], expected);
    } finally {
      await resumed.close();
    }
  });

  test('rows are cut to ptx_max_length tokens', async () => {
    const mix = await PtxMix.open({ coefficient: 1, datasetPath: corpus, batchSize: 2, maxLength: 6 }, 2, tokenizer, 0);
    try {
      assert.equal((await mix.next()).seqLen, 6);
    } finally {
      await mix.close();
    }
  });

  test('a missing or empty file is an error naming ppo.ptx_dataset', async () => {
    const named = (e: unknown) => e instanceof RlConfigError && e.field === 'ppo.ptx_dataset';
    await assert.rejects(PtxMix.open({ coefficient: 1, datasetPath: join(tmpdir(), 'no-such-ptx.jsonl'), batchSize: null, maxLength: 512 }, 2, tokenizer, 0), (e: unknown) => named(e) && /does not exist/.test((e as Error).message));
    const empty = join(await mkdtemp(join(tmpdir(), 'posttrain-ptx-')), 'empty.jsonl');
    await writeFile(empty, '');
    await assert.rejects(PtxMix.open({ coefficient: 1, datasetPath: empty, batchSize: null, maxLength: 512 }, 2, tokenizer, 0), (e: unknown) => named(e) && /has no records/.test((e as Error).message));
  });
});
