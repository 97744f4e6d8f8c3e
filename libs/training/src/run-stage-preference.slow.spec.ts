import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPreferenceLoader } from '@posttrain/data';
import { loadModel, sequenceScores, sequenceTokenLogProbs } from '@posttrain/model';
import { loadTokenizer } from '@posttrain/tokenizer';
import { stackPreferenceRows } from './create-reward-task';
import { readMetricsJsonl } from '@posttrain/telemetry';
import { parseRunConfig } from './run-config';
import { runStage } from './run-stage';
import { openStageData } from './stage-data';
import { letterPreferences, useCpuBackend, writeJsonl, writeTinyModel } from './test-support';

let root = '';
before(async () => {
  await useCpuBackend();
  root = await mkdtemp(join(tmpdir(), 'train-pref-'));
  await writeTinyModel(join(root, 'model'));
  await writeJsonl(join(root, 'train.jsonl'), letterPreferences(24));
  await writeJsonl(join(root, 'eval.jsonl'), letterPreferences(12, 3));
});
after(async () => rm(root, { recursive: true, force: true }));

function config(stage: 'rm' | 'dpo', runId: string, extra: Record<string, unknown>) {
  return parseRunConfig({
    stage,
    model: join(root, 'model'),
    output_dir: join(root, 'runs'),
    run_id: runId,
    seed: 5,
    dataset: { train: join(root, 'train.jsonl'), eval: join(root, 'eval.jsonl') },
    train: { max_steps: 15, batch_size: 8, learning_rate: 5e-3, lr_scheduler: 'constant', logging_steps: 1 },
    ...extra,
  });
}

describe('reward model stage', () => {
  test('held-out accuracy of a learnable preference rises well above chance; the result is a servable score model', async () => {
    const result = await runStage(config('rm', 'rm', { rm: { margin: 0 } }), { progress: false });
    assert.equal(result.status, 'completed');
    assert.ok(result.lastEval !== null);
    // 12 held-out pairs; chance is 0.5.
    assert.ok(result.lastEval['eval/rewards/accuracies'] >= 0.9, `eval accuracy ${result.lastEval['eval/rewards/accuracies']}`);
    assert.ok(result.lastEval['eval/rewards/margins'] > 0);
    const cfg = JSON.parse(readFileSync(join(result.modelDir!, 'config.json'), 'utf8')) as { architectures: string[] };
    assert.deepEqual(cfg.architectures, ['LlamaForSequenceClassification']);
    const m = await loadModel(result.modelDir!);
    assert.equal(m.heads.score, true);
    assert.equal(m.heads.lm, false);
    m.dispose();
  });

  test('normalize_reward: config.json records the mean and n-1 standard deviation of the final model\'s scores on every held-out chosen and rejected reply (tol 1e-4)', async () => {
    const cfg = config('rm', 'rm-normalized', { rm: { normalize_reward: true } });
    const result = await runStage(cfg, { progress: false });
    assert.equal(result.status, 'completed');
    const written = JSON.parse(readFileSync(join(result.modelDir!, 'config.json'), 'utf8')) as { normalize_reward: boolean; mean: number; std: number };
    assert.equal(written.normalize_reward, true);
    assert.equal(written.mean, result.lastEval!['eval/reward_mean']);
    assert.equal(written.std, result.lastEval!['eval/reward_std']);
    // Recomputed here from the saved model: every eval pair's two scores, then the textbook mean and sample deviation.
    const m = await loadModel(result.modelDir!);
    const data = await openStageData(cfg);
    const scores: number[] = [];
    try {
      for await (const batch of createPreferenceLoader(data.eval!, await loadTokenizer(cfg.model), data.evalData).epochBatches()) {
        const t = sequenceScores(m, stackPreferenceRows(batch));
        scores.push(...t.dataSync());
        t.dispose();
      }
    } finally {
      m.dispose();
      await data.close();
    }
    assert.equal(scores.length, 24, '12 pairs, two replies each');
    const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
    const std = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / (scores.length - 1));
    assert.ok(Math.abs(written.mean - mean) <= 1e-4 && Math.abs(written.std - std) <= 1e-4, `recorded ${written.mean} +- ${written.std}, recomputed ${mean} +- ${std}`);
    assert.ok(std > 0.1, `the trained scores spread (std ${std})`);
  });

  test('normalize_reward without an eval split is refused before training', () => {
    assert.throws(
      () => parseRunConfig({ stage: 'rm', model: join(root, 'model'), dataset: { train: join(root, 'train.jsonl') }, rm: { normalize_reward: true } }),
      /rm\.normalize_reward: true needs an eval split \(dataset\.eval or dataset\.eval_fraction > 0\)/,
    );
  });
});

describe('DPO stage', () => {
  test('raises rewards/accuracies and rewards/margins; the injected reference is called once per dataset', async () => {
    const refModel = await loadModel(join(root, 'model'));
    let calls = 0;
    let sequences = 0;
    const steps: Record<string, number>[] = [];
    try {
      const result = await runStage(config('dpo', 'dpo', { dpo: { beta: 0.5 } }), {
        progress: false,
        referenceLogProbs: async (req) => {
          calls++;
          sequences += req.sequences.length;
          return sequenceTokenLogProbs(refModel, req.sequences, { promptLengths: req.promptLengths });
        },
        callbacks: { onStep: (e) => steps.push(e.metrics) },
      });
      assert.equal(result.status, 'completed');
      // 24 train + 12 eval pairs, chosen and rejected each: 72 sequences, in batches of reference.batch_size 8 pairs.
      assert.equal(sequences, 72);
      assert.equal(calls, 3 + 2);
      // Step 1: the policy is the reference, so the implicit rewards are 0 and the loss is log 2 (within float32 noise).
      assert.ok(Math.abs(steps[0]['rewards/chosen']) < 1e-4, `rewards/chosen at step 1: ${steps[0]['rewards/chosen']}`);
      assert.ok(Math.abs(steps[0]['loss/dpo'] - Math.LN2) < 1e-4);
      const last = steps[steps.length - 1];
      assert.ok(last['rewards/margins'] > 0.5, `margins ${last['rewards/margins']}`);
      assert.ok(last['rewards/accuracies'] >= 0.9, `accuracies ${last['rewards/accuracies']}`);
      assert.ok(result.lastEval!['eval/rewards/accuracies'] >= 0.9);
      for (const k of ['rewards/chosen', 'rewards/rejected', 'logps/chosen', 'logps/rejected']) assert.ok(k in last, `${k} not reported`);
      assert.ok(existsSync(join(result.runDir, 'reference_logps.json')));
      const recs = readMetricsJsonl(join(result.runDir, 'metrics.jsonl'));
      assert.ok(recs.some((r) => 'eval/rewards/margins' in r));
    } finally {
      refModel.dispose();
    }
  });

  test('rpo_alpha adds the chosen replies\' token-mean NLL: at step 1 it equals the reference\'s, computed independently', async () => {
    const refModel = await loadModel(join(root, 'model'));
    const chosenTrain: number[][] = [];
    let calls = 0;
    const steps: Record<string, number>[] = [];
    try {
      // One batch of all 24 train pairs, so step 1's NLL is over every chosen reply of the split.
      const c = config('dpo', 'rpo', { dpo: { beta: 0.5, rpo_alpha: 0.7 } });
      c.train.batch_size = 24;
      c.train.max_steps = 2;
      const result = await runStage(c, {
        progress: false,
        referenceLogProbs: async (req) => {
          const rows = sequenceTokenLogProbs(refModel, req.sequences, { promptLengths: req.promptLengths });
          // Train split first (3 calls of 8 pairs: chosen rows, then rejected rows), then eval.
          if (calls++ < 3) chosenTrain.push(...rows.slice(0, rows.length / 2));
          return rows;
        },
        callbacks: { onStep: (e) => steps.push(e.metrics) },
      });
      assert.equal(result.status, 'completed');
      assert.equal(chosenTrain.length, 24);
      const tokens = chosenTrain.reduce((a, r) => a + r.length, 0);
      const nll = -chosenTrain.reduce((a, r) => a + r.reduce((x, y) => x + y, 0), 0) / tokens;
      // Step 1: policy = reference, so loss/dpo = log 2 and the loss is log 2 + 0.7 NLL (float32 sums: 1e-4 relative).
      assert.ok(Math.abs(steps[0].nll_loss - nll) <= 1e-4 * nll, `nll_loss ${steps[0].nll_loss}, by hand ${nll}`);
      assert.ok(Math.abs(steps[0]['loss/dpo'] - Math.LN2) < 1e-4);
      assert.ok(Math.abs(steps[0]['train/loss'] - (Math.LN2 + 0.7 * nll)) <= 1e-4 * (Math.LN2 + 0.7 * nll), `train/loss ${steps[0]['train/loss']}`);
    } finally {
      refModel.dispose();
    }
  });
});
