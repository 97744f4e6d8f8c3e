import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../main';
import { captureIO } from '../test-io';

const repo = join(__dirname, '..', '..', '..', '..');
const sftExample = join(repo, 'examples', 'configs', 'sft.yaml');

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO();
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

/** bin/posttrain.js as the Kubernetes Job runs it: its exit status is what the Job sees. */
function posttrainProcess(argv: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(repo, 'bin', 'posttrain.js'), ...argv], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, POSTTRAIN_LOG_LEVEL: 'warn' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += String(c)));
    child.stderr.on('data', (c) => (err += String(c)));
    child.once('error', fail);
    child.once('exit', (code) => done({ code, out, err }));
  });
}

describe('posttrain trainer run (the trainer-run Job)', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-trainer-run-'));
  const model = join(dir, 'model');
  const data = join(dir, 'data');
  const runs = join(dir, 'runs');

  before(async () => {
    const tiny = join(dir, 'tiny-config.json');
    writeFileSync(tiny, JSON.stringify({ model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 101, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, max_position_embeddings: 256, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: true, eos_token_id: 2, pad_token_id: 3 }));
    let r = await cli(['model', 'init', '--out', model, '--config', tiny, '--seed', '5']);
    assert.equal(r.code, 0, r.err);
    r = await cli(['task', 'generate', '--out', data, '--sizes', '24', '--corpus', '24', '--preference', '8', '--prompts', '8', '--eval', '8']);
    assert.equal(r.code, 0, r.err);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const sft = (runId: string, steps: number, train = join(data, 'sft-24.jsonl')) => [
    'trainer', 'run', '--config', sftExample,
    '--set', `model=${model}`, '--set', `output_dir=${runs}`, '--set', `run_id=${runId}`,
    '--set', `train.max_steps=${steps}`, '--set', 'train.batch_size=4', '--set', 'train.save_steps=2', '--set', 'train.eval_steps=100',
    '--set', `dataset.train=${train}`, '--set', 'dataset.eval=null', '--no-progress',
  ];

  test('a run that completes: the process exits 0 and the run directory holds the model', async () => {
    const r = await posttrainProcess(sft('job-ok', 2));
    assert.equal(r.code, 0, r.err + r.out);
    assert.match(r.err, /stage sft from .*sft\.yaml/);
    assert.match(r.out, /completed job-ok at step 2\/2/);
    for (const f of ['metrics.jsonl', 'model/model.safetensors', 'checkpoints/step-2/trainer_state.json']) assert.ok(existsSync(join(runs, 'job-ok', f)), f);
  });

  test('a run that fails (its data file is missing): the process exits 1 naming the file', async () => {
    const r = await posttrainProcess(sft('job-missing-data', 2, join(dir, 'absent.jsonl')));
    assert.equal(r.code, 1, r.err + r.out);
    assert.match(r.err, /^posttrain trainer run: .*absent\.jsonl/m);
  });

  test('a run_id with a checkpoint is resumed (a retried Job pod continues); a config mistake exits 2 naming the key', async () => {
    let r = await cli(sft('job-retry', 2));
    assert.equal(r.code, 0, r.err);
    // Run again (as a retried pod would): without resuming, the harness refuses a run_id that holds a run.
    r = await cli(sft('job-retry', 2));
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /job-retry has a checkpoint at step 2; resuming it/);
    assert.match(r.out, /completed job-retry at step 2\/2/);
    const steps = readFileSync(join(runs, 'job-retry', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(steps.filter((s) => s === 1).length, 1, `step 1 logged once: ${steps.join(',')}`);

    r = await cli(['trainer', 'run', '--config', sftExample, '--set', 'train.batch_size=many']);
    assert.equal(r.code, 2);
    assert.match(r.err, /train\.batch_size/);
    r = await cli(['trainer', 'run']);
    assert.equal(r.code, 2);
    assert.match(r.err, /missing required option --config/);
  });
});
