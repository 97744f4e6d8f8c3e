import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readMetricsJsonl } from '@posttrain/telemetry';
import { createBuiltinTokenizer } from '@posttrain/tokenizer';
import { parseRunConfig, RunConfigError } from './run-config';
import { TrainingError } from './run-harness';
import { runStage } from './run-stage';
import { additionChats, useCpuBackend, writeJsonl, writeTinyModel } from './test-support';

let root = '';
before(async () => {
  await useCpuBackend();
  root = await mkdtemp(join(tmpdir(), 'train-sft-'));
  await writeTinyModel(join(root, 'model'));
  await writeJsonl(join(root, 'train.jsonl'), additionChats(16));
  await writeJsonl(join(root, 'eval.jsonl'), additionChats(8, 5));
});
after(async () => rm(root, { recursive: true, force: true }));

function sftConfig(runId: string, train: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return parseRunConfig({
    stage: 'sft',
    model: join(root, 'model'),
    output_dir: join(root, 'runs'),
    run_id: runId,
    seed: 3,
    dataset: { train: join(root, 'train.jsonl'), eval: join(root, 'eval.jsonl') },
    train: { batch_size: 16, learning_rate: 1e-2, lr_scheduler: 'constant', logging_steps: 1, ...train },
    ...extra,
  });
}

describe('SFT stage', () => {
  test('loss falls, only assistant tokens count, and the run writes its artifacts', async () => {
    const steps: number[] = [];
    const result = await runStage(sftConfig('learn', { max_steps: 20, eval_steps: 10 }), { progress: false, callbacks: { onStep: (e) => steps.push(e.metrics['train/loss']) } });
    assert.equal(result.status, 'completed');
    assert.equal(steps.length, 20);
    assert.ok(steps[19] < 0.6 * steps[0], `loss ${steps[0]} -> ${steps[19]} did not fall by 40%`);

    // batch_size = dataset size, so every step sees all 16 conversations: the counted tokens must be
    // exactly the tokens of the assistant turns (content + <|im_end|>) as the tokenizer masks them.
    const tok = createBuiltinTokenizer();
    let assistant = 0;
    let total = 0;
    for (const r of additionChats(16)) {
      const e = tok.encodeChat(r.messages);
      assistant += e.assistantMask.reduce((a, b) => a + b, 0);
      total += e.ids.length;
    }
    const recs = readMetricsJsonl(join(result.runDir, 'metrics.jsonl'));
    const trainRecs = recs.filter((r) => 'train/loss' in r);
    assert.equal(trainRecs.length, 20);
    for (const r of trainRecs) assert.equal(r['sft/num_tokens'], assistant);
    assert.ok(assistant < total / 3, `assistant tokens ${assistant} of ${total}`);
    const evals = recs.filter((r) => 'eval/loss' in r);
    assert.deepEqual(evals.map((r) => r.step), [10, 20]);
    assert.ok(evals[1]['eval/loss'] < evals[0]['eval/loss'] + 0.5);

    for (const f of ['config.json', 'metrics.jsonl', 'report.html', 'model/config.json', 'model/model.safetensors', 'model/tokenizer.json', 'checkpoints/step-20/trainer_state.json', 'checkpoints/step-20/optimizer.safetensors', 'checkpoints/step-20/model/model.safetensors']) {
      assert.ok(existsSync(join(result.runDir, f)), `${f} missing`);
    }
    assert.ok(readdirSync(result.runDir).some((f) => f.startsWith('events.out.tfevents.')));
    const resolved = JSON.parse(readFileSync(join(result.runDir, 'config.json'), 'utf8')) as { run_id: string; train: { learning_rate: number } };
    assert.equal(resolved.run_id, 'learn');
    assert.equal(resolved.train.learning_rate, 1e-2);
  });

  test('a run stopped after a checkpoint and resumed gives the same metrics step for step', async () => {
    const train = { max_steps: 6, save_steps: 3, batch_size: 4, gradient_accumulation_steps: 2, lr_scheduler: 'cosine', warmup_steps: 1, learning_rate: 5e-3 };
    const full = await runStage(sftConfig('full', train, { lora: { r: 2, alpha: 4, dropout: 0.1, target_modules: ['q_proj', 'down_proj'] } }), { progress: false });
    assert.equal(full.status, 'completed');

    const ac = new AbortController();
    const first = await runStage(sftConfig('split', train, { lora: { r: 2, alpha: 4, dropout: 0.1, target_modules: ['q_proj', 'down_proj'] } }), {
      progress: false,
      signal: ac.signal,
      callbacks: { onStep: (e) => { if (e.step === 4) ac.abort(); } },
    });
    assert.equal(first.status, 'cancelled');
    assert.equal(first.step, 4);
    assert.ok(existsSync(join(first.runDir, 'checkpoints/step-3/adapter/adapter_model.safetensors')));
    assert.ok(!existsSync(join(first.runDir, 'checkpoints/step-4')));
    const resumed = await runStage(sftConfig('split', train, { resume: true, lora: { r: 2, alpha: 4, dropout: 0.1, target_modules: ['q_proj', 'down_proj'] } }), { progress: false });
    assert.equal(resumed.status, 'completed');

    const strip = (dir: string) => readMetricsJsonl(join(dir, 'metrics.jsonl')).map(({ time: _t, ...rest }) => rest);
    const a = strip(full.runDir);
    const b = strip(resumed.runDir);
    assert.equal(a.length, 7); // 6 steps + the final eval
    assert.deepEqual(b, a); // bitwise: same numbers, same order
  });

  test('a NaN loss skips the step; too many in a row stop the run with a clear error', async () => {
    const nanAt = new Set([2, 3]);
    const before: number[] = [];
    const result = await runStage(sftConfig('nan', { max_steps: 4, max_consecutive_skips: 2 }), {
      progress: false,
      transformLoss: (loss, { step }) => (nanAt.has(step) ? tf.mul(loss, Number.NaN) : loss),
      callbacks: { onStep: (e) => before.push(e.skipped ? 1 : 0) },
    });
    assert.equal(result.status, 'completed');
    assert.deepEqual(before, [0, 1, 1, 0]);
    assert.equal(result.skippedSteps, 2);
    const recs = readMetricsJsonl(join(result.runDir, 'metrics.jsonl')).filter((r) => 'train/loss' in r);
    assert.ok(Number.isNaN(recs[1]['train/loss']));
    assert.ok(Number.isFinite(recs[3]['train/loss']));

    await assert.rejects(
      runStage(sftConfig('nan-stop', { max_steps: 10, max_consecutive_skips: 2 }), { progress: false, transformLoss: (loss) => tf.mul(loss, Number.NaN) }),
      (e: unknown) => e instanceof TrainingError && /step 3: 3 steps in a row had a non-finite loss or gradient .*more than train\.max_consecutive_skips = 2/.test(e.message),
    );
  });

  test('run errors name what is wrong', async () => {
    await assert.rejects(runStage(sftConfig('learn', { max_steps: 1 }), { progress: false }), /run_id: .*learn already holds a run; set resume: true/);
    await assert.rejects(runStage(sftConfig('nothing', { max_steps: 1 }, { resume: true }), { progress: false }), /resume: no checkpoint to resume from/);
    const missing = parseRunConfig({ stage: 'sft', model: join(root, 'model'), output_dir: join(root, 'runs'), run_id: 'm', dataset: { train: join(root, 'nope.jsonl') } });
    await assert.rejects(runStage(missing, { progress: false }), (e: unknown) => e instanceof RunConfigError && /dataset\.train: file ".*nope\.jsonl" does not exist/.test(e.message));
    const noModel = parseRunConfig({ stage: 'sft', model: join(root, 'no-model'), output_dir: join(root, 'runs'), run_id: 'n', dataset: { train: join(root, 'train.jsonl') } });
    await assert.rejects(runStage(noModel, { progress: false }), /model: ".*no-model" is not a model directory \(no config\.json\)/);
  });
});
