import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRunConfig } from '@posttrain/training';
import { runCli } from '../main';
import { captureIO } from '../test-io';

const examples = join(__dirname, '..', '..', '..', '..', 'examples', 'configs');

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO();
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe('example configs', () => {
  test('every file in examples/configs is a valid run config named after its stage (a key its stage does not read is refused)', async () => {
    const files = readdirSync(examples).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 7, files.join(','));
    for (const f of files) {
      const c = await loadRunConfig(join(examples, f));
      assert.equal(c.stage, f.replace(/(-lora)?\.yaml$/, ''), f);
    }
  });
});

describe('posttrain lm / sft / rm / dpo', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-cli-train-'));
  const model = join(dir, 'model');
  const data = join(dir, 'data');
  const tiny = join(dir, 'tiny-config.json');

  before(async () => {
    // A tiny HF config: model init must take a Hugging Face config.json as it is.
    writeFileSync(tiny, JSON.stringify({ model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 101, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, max_position_embeddings: 256, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: true, eos_token_id: 2, pad_token_id: 3 }));
    let r = await cli(['model', 'init', '--out', model, '--config', tiny, '--seed', '3']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /wrote .*llama, [\d,]+ parameters, vocab 101/);
    r = await cli(['task', 'generate', '--out', data, '--sizes', '40', '--corpus', '40', '--preference', '24', '--prompts', '8', '--eval', '8']);
    assert.equal(r.code, 0, r.err);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const common = (runId: string) => ['--set', `model=${model}`, '--set', `output_dir=${join(dir, 'runs')}`, '--set', `run_id=${runId}`, '--set', 'train.max_steps=3', '--set', 'train.batch_size=4', '--set', 'train.logging_steps=1', '--set', 'train.eval_steps=3', '--no-progress'];

  test('sft from the example config writes a run with metrics, a model and a report', async () => {
    const r = await cli(['sft', '--config', join(examples, 'sft.yaml'), ...common('sft-test'), '--set', `dataset.train=${join(data, 'sft-40.jsonl')}`, '--set', `dataset.eval=${join(data, 'sft-eval.jsonl')}`]);
    assert.equal(r.code, 0, r.err + r.out);
    assert.match(r.out, /completed sft-test at step 3\/3/);
    const run = join(dir, 'runs', 'sft-test');
    for (const f of ['config.json', 'metrics.jsonl', 'report.html', 'model/config.json', 'model/model.safetensors']) assert.ok(existsSync(join(run, f)), f);
    const lines = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n');
    assert.ok(lines.length >= 3, lines.join('\n'));
  });

  test('dpo from the example config runs on preference pairs', async () => {
    const r = await cli(['dpo', '--config', join(examples, 'dpo.yaml'), ...common('dpo-test'), '--set', `dataset.train=${join(data, 'preference.jsonl')}`, '--set', `dataset.eval=${join(data, 'preference-eval.jsonl')}`, '--json']);
    assert.equal(r.code, 0, r.err + r.out);
    const result = JSON.parse(r.out.trim().split('\n').pop()!);
    assert.equal(result.status, 'completed');
    assert.ok('rewards/margins' in result.lastMetrics, Object.keys(result.lastMetrics).join(','));
  });

  test('config mistakes are usage errors naming the key, the value and what was expected', async () => {
    const cases: [string[], RegExp][] = [
      [['sft', '--config', join(examples, 'sft.yaml'), '--set', 'train.learning_rat=1'], /train\.learning_rat/],
      [['sft', '--config', join(examples, 'sft.yaml'), '--set', 'train.batch_size=many'], /train\.batch_size/],
      [['dpo', '--config', join(examples, 'sft.yaml')], /stage is "sft", but this is `posttrain dpo`/],
      [['sft'], /missing required option --config/],
      [['sft', '--config', join(dir, 'nope.yaml')], /nope\.yaml: cannot read the config file/],
      [['sft', '--config', join(examples, 'sft.yaml'), '--set', 'oops'], /--set: got "oops", expected key=value/],
    ];
    for (const [argv, re] of cases) {
      const r = await cli(argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, re, argv.join(' '));
    }
  });

  test('a missing dataset is an error naming the file', async () => {
    const r = await cli(['sft', '--config', join(examples, 'sft.yaml'), ...common('missing-data'), '--set', `dataset.train=${join(dir, 'absent.jsonl')}`, '--set', 'dataset.eval=null']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /absent\.jsonl/);
  });
});
