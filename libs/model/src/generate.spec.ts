import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { Rng } from '@posttrain/random';
import { createModelConfig } from './model-config';
import { modelFromHfTensors } from './llama-model';
import type { LlamaModel } from './llama-model';
import { sampleToken } from './decode-step';
import { generate } from './generate';
import { tokenLogProbs } from './token-log-probs';
import { makeTestWeights } from './test-reference';

const config = createModelConfig({ modelType: 'qwen2', vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 64 });
const heads = { lm: true, score: false };
let model: LlamaModel;
const prompts = [[3, 9, 14, 1, 7], [22, 5], [8, 8, 30]];

before(async () => {
  await tf.setBackend('cpu');
  model = modelFromHfTensors(config, heads, makeTestWeights(config, heads, 11, 0.5), 'test');
});

describe('generate', () => {
  test('KV-cache logits equal full recomputation at every step (tol 1e-4)', () => {
    for (const sampling of [{ temperature: 0 }, { temperature: 0.9, seed: 4 }]) {
      const withCache: Float32Array[] = [];
      const without: Float32Array[] = [];
      const a = generate(model, prompts, { maxNewTokens: 6, ...sampling, onStepLogits: (_, l) => withCache.push(l.slice()) });
      const b = generate(model, prompts, { maxNewTokens: 6, ...sampling, useCache: false, onStepLogits: (_, l) => without.push(l.slice()) });
      assert.deepEqual(a.map((c) => c.tokens), b.map((c) => c.tokens));
      assert.equal(withCache.length, 6);
      withCache.forEach((l, s) => l.forEach((x, i) => assert.ok(Math.abs(x - without[s][i]) <= 1e-4, `step ${s} logit ${i}: ${x} vs ${without[s][i]}`)));
    }
  });

  test('with a sliding window (mistral), cached keys beyond the window are masked like in recomputation', () => {
    const mc = { ...createModelConfig({ modelType: 'mistral', vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 64 }), slidingWindow: 3 };
    const m = modelFromHfTensors(mc, heads, makeTestWeights(mc, heads, 12, 0.5), 'mistral');
    const a: Float32Array[] = [];
    const b: Float32Array[] = [];
    generate(m, prompts, { maxNewTokens: 6, temperature: 0, onStepLogits: (_, l) => a.push(l.slice()) });
    generate(m, prompts, { maxNewTokens: 6, temperature: 0, useCache: false, onStepLogits: (_, l) => b.push(l.slice()) });
    a.forEach((l, s) => l.forEach((x, i) => assert.ok(Math.abs(x - b[s][i]) <= 1e-4, `step ${s} logit ${i}`)));
    m.dispose();
  });

  test('a left-padded row generates what it generates alone', () => {
    const batch = generate(model, prompts, { maxNewTokens: 5, temperature: 0 });
    prompts.forEach((p, i) => {
      const [alone] = generate(model, [p], { maxNewTokens: 5, temperature: 0 });
      assert.deepEqual(batch[i].tokens, alone.tokens, `row ${i}`);
      batch[i].logProbs.forEach((x, j) => assert.ok(Math.abs(x - alone.logProbs[j]) <= 1e-4));
    });
  });

  test('same seed, same sample; another seed, another sample', () => {
    const opts = { maxNewTokens: 8, temperature: 1.2, topP: 0.95 };
    const a = generate(model, prompts, { ...opts, seed: 7 });
    const b = generate(model, prompts, { ...opts, seed: 7 });
    const c = generate(model, prompts, { ...opts, seed: 8 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.map((x) => x.tokens), c.map((x) => x.tokens));
    // A restored stream continues identically.
    const rng = new Rng(5);
    generate(model, prompts, { ...opts, rng });
    const saved = rng.getState();
    const d = generate(model, prompts, { ...opts, rng });
    const e = generate(model, prompts, { ...opts, rng: Rng.fromState(saved) });
    assert.deepEqual(d, e);
  });

  test('sampled log-probs equal tokenLogProbs at the same temperature (before top-k/top-p), tol 1e-4', () => {
    const temperature = 0.7;
    const out = generate(model, prompts, { maxNewTokens: 6, temperature, topK: 5, topP: 0.9, seed: 3 });
    // Score prompt+completion, left-padded like generate does.
    const seqs = prompts.map((p, i) => [...p, ...out[i].tokens]);
    const T = Math.max(...seqs.map((s) => s.length));
    const lp = tokenLogProbs(model, {
      inputIds: seqs.map((s) => [...new Array<number>(T - s.length).fill(0), ...s]),
      attentionMask: seqs.map((s) => [...new Array<number>(T - s.length).fill(0), ...new Array<number>(s.length).fill(1)]),
    }, { temperature });
    const rows = lp.arraySync();
    lp.dispose();
    out.forEach((c, i) => {
      const first = T - c.tokens.length;
      c.logProbs.forEach((x, j) => assert.ok(Math.abs(x - rows[i][first + j]) <= 1e-4, `row ${i} token ${j}: ${x} vs ${rows[i][first + j]}`));
    });
  });

  test('stop tokens end a row with finishReason "stop"; others run to "length"', () => {
    const [free] = generate(model, [prompts[0]], { maxNewTokens: 6, temperature: 0, stopTokens: [] });
    const stopAt = free.tokens[2];
    const first = free.tokens.indexOf(stopAt);
    const [stopped] = generate(model, [prompts[0]], { maxNewTokens: 6, temperature: 0, stopTokens: [stopAt] });
    assert.deepEqual(stopped.tokens, free.tokens.slice(0, first + 1));
    assert.equal(stopped.finishReason, 'stop');
    assert.equal(free.finishReason, 'length');
    assert.equal(free.tokens.length, 6);
  });

  test('sampling parameters default to generation_config.json', () => {
    const greedy = generate(model, prompts, { maxNewTokens: 4, temperature: 0 });
    const saved = model.generationDefaults;
    model.generationDefaults = { ...saved, temperature: 0 };
    try {
      assert.deepEqual(generate(model, prompts, { maxNewTokens: 4, seed: 99 }), greedy);
    } finally {
      model.generationDefaults = saved;
    }
    assert.notDeepEqual(generate(model, prompts, { maxNewTokens: 4, seed: 99 }).map((c) => c.tokens), greedy.map((c) => c.tokens));
  });

  test('invalid options name the field', () => {
    assert.throws(() => generate(model, prompts, { maxNewTokens: 0 }), /maxNewTokens: 0 is not a positive integer/);
    assert.throws(() => generate(model, [[1, 99]], { maxNewTokens: 1 }), /prompts\[0\]\[1\]: token id 99/);
    assert.throws(() => generate(model, prompts, { maxNewTokens: 1, topP: 0 }), /topP: 0 is not a number in \(0, 1\]/);
    assert.throws(() => generate(model, prompts, { maxNewTokens: 100 }), /exceed max_position_embeddings \(64\)/);
  });

  test('no tensor leaks across generate calls', () => {
    generate(model, prompts, { maxNewTokens: 3, seed: 1 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      generate(model, prompts, { maxNewTokens: 3, seed: i });
      generate(model, prompts, { maxNewTokens: 3, seed: i, useCache: false });
    }
    assert.equal(tf.memory().numTensors, before);
  });
});

describe('sampleToken', () => {
  // logits ln(1), ln(2), ln(3), ln(4) at temperature 1: p = 0.1, 0.2, 0.3, 0.4.
  const logits = [0, Math.log(2), Math.log(3), Math.log(4)];
  const freq = (params: { temperature: number; topK: number; topP: number }, n = 20000) => {
    const rng = new Rng(42);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) counts[sampleToken(logits, params, rng).token]++;
    return counts.map((c) => c / n);
  };
  // 20000 draws: binomial std <= sqrt(0.25/20000) = 0.0035; tolerance 0.015 is > 4 std.
  const near = (got: number[], want: number[]) => got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 0.015, `p[${i}] = ${g}, want ${want[i]}`));

  test('frequencies follow softmax, top-k and top-p renormalise', () => {
    near(freq({ temperature: 1, topK: 0, topP: 1 }), [0.1, 0.2, 0.3, 0.4]);
    near(freq({ temperature: 1, topK: 2, topP: 1 }), [0, 0, 3 / 7, 4 / 7]);
    // top-p 0.65: 0.4 + 0.3 = 0.7 >= 0.65 keeps {3, 2}.
    near(freq({ temperature: 1, topK: 0, topP: 0.65 }), [0, 0, 3 / 7, 4 / 7]);
    // temperature 0.5 squares the odds: 1, 4, 9, 16 over 30.
    near(freq({ temperature: 0.5, topK: 0, topP: 1 }), [1 / 30, 4 / 30, 9 / 30, 16 / 30]);
  });

  test('a large vocabulary draws exactly what a full sort would (candidate prefix is exact)', () => {
    // Brute force: sort all tokens, truncate (top-k, then top-p on the renormalised rest), sample.
    const brute = (l: number[], p: { temperature: number; topK: number; topP: number }, rng: Rng) => {
      const z = l.map((x) => x / p.temperature);
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
      let order = z.map((_, i) => i);
      if (p.topK > 0 || p.topP < 1) order.sort((a, b) => z[b] - z[a] || a - b); // untruncated draws walk index order
      if (p.topK > 0) order = order.slice(0, p.topK);
      if (p.topP < 1) {
        const mass = order.reduce((a, i) => a + Math.exp(z[i] - lse), 0);
        let cum = 0;
        let keep = 0;
        while (keep < order.length) {
          cum += Math.exp(z[order[keep]] - lse) / mass;
          keep++;
          if (cum >= p.topP) break;
        }
        order = order.slice(0, keep);
      }
      const total = order.reduce((a, i) => a + Math.exp(z[i] - m), 0);
      let u = rng.nextFloat() * total;
      for (const i of order) {
        u -= Math.exp(z[i] - m);
        if (u < 0) return i;
      }
      return order[order.length - 1];
    };
    const gen = new Rng(3);
    const big = Array.from({ length: 5000 }, () => gen.normal(0, 3));
    big[17] = big[4000]; // a tie across the candidate boundary region
    for (const p of [{ temperature: 1.3, topK: 0, topP: 1 }, { temperature: 1, topK: 40, topP: 1 }, { temperature: 0.7, topK: 0, topP: 0.9 }, { temperature: 2, topK: 0, topP: 0.999 }, { temperature: 1, topK: 5000, topP: 0.5 }]) {
      const a = new Rng(11);
      const b = new Rng(11);
      for (let i = 0; i < 200; i++) assert.equal(sampleToken(big, p, a).token, brute(big, p, b), `params ${JSON.stringify(p)} draw ${i}`);
    }
  });

  test('log-prob is before truncation; greedy picks the argmax', () => {
    const rng = new Rng(1);
    const r = sampleToken(logits, { temperature: 1, topK: 1, topP: 1 }, rng);
    assert.equal(r.token, 3);
    assert.ok(Math.abs(r.logProb - Math.log(0.4)) < 1e-12);
    const g = sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, rng);
    assert.equal(g.token, 3);
    assert.ok(Math.abs(g.logProb - Math.log(0.4)) < 1e-12);
    // temperature 0.5: p(3) = 16/30.
    const t = sampleToken(logits, { temperature: 0.5, topK: 1, topP: 1 }, rng);
    assert.ok(Math.abs(t.logProb - Math.log(16 / 30)) < 1e-12);
  });
});
