import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runModelBench } from './run-model-bench';

test('bench reports shape, parameters, FLOP count and throughputs (tiny shape, cpu)', async () => {
  const r = await runModelBench({
    backend: 'cpu',
    shape: { hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 24, vocabSize: 32 },
    seqLen: 8, batchSize: 2, steps: 2, warmupSteps: 1, sampleBatch: 2, promptLen: 3, newTokens: 3, compareStraightforward: true,
    decodeBatches: [1, 3], decodePromptLen: 4, decodeNewTokens: 5, decodeReps: 1,
  });
  assert.equal(r.backend.tfjsBackend, 'cpu');
  // P = embed 32*16 + (q,k,v,o 4*16*16 + mlp 3*16*24 + norms 2*16) + final norm 16 + lm_head 32*16 = 3248
  assert.equal(r.parameters, 3248);
  // 6*P*tokens + 12*L*T*(H*E)*tokens with tokens = 16, L = 1, T = 8, H*E = 16: 311808 + 24576
  assert.equal(r.train.flopsPerStep, 336384);
  assert.equal(r.train.tokensPerStep, 16);
  assert.ok(r.train.secondsPerStepBest > 0 && r.train.secondsPerStepBest <= r.train.secondsPerStepMedian);
  // tokensPerSecond and gflopPerSecond are the median step's; the best step's are beside them.
  assert.ok(Math.abs(r.train.gflopPerSecond - 336384 / r.train.secondsPerStepMedian / 1e9) < 1e-9);
  assert.ok(Math.abs(r.train.tokensPerSecond - 16 / r.train.secondsPerStepMedian) < 1e-9);
  assert.ok(Math.abs(r.train.tokensPerSecondBest - 16 / r.train.secondsPerStepBest) < 1e-9);
  assert.deepEqual(r.decode.map((d) => [d.batch, d.promptLen, d.newTokens]), [[1, 4, 5], [3, 4, 5]]);
  assert.ok(r.decode.every((d) => d.tokensPerSecond > 0));
  assert.deepEqual(r.backend.native.active, false, 'cpu runs no native kernels');
  assert.equal(r.plainWasm, undefined);
  assert.ok(Number.isFinite(r.train.finalLoss) && r.train.finalLoss > 0);
  assert.ok(r.train.straightforward !== undefined && Math.abs(r.train.straightforward.speedup - r.train.straightforward.secondsPerStepBest / r.train.secondsPerStepBest) < 1e-9);
  assert.ok(r.sampling.withCache.tokensPerSecond > 0 && r.sampling.withoutCache.tokensPerSecond > 0);
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r, 'plain JSON');
  await assert.rejects(runModelBench({ backend: 'cpu', seqLen: 0 }), /bench option seqLen: 0 is not a positive integer/);
  await assert.rejects(runModelBench({ backend: 'cpu', decodeBatches: [8, 0] }), /bench option decodeBatches\[1\]: 0 is not a positive integer/);
  await assert.rejects(runModelBench({ backend: 'cpu', blasThreads: [2] }), /bench option blasThreads: the native kernels are not active \(not the wasm backend\)/);
});
