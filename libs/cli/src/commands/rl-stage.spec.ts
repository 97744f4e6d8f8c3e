import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../main';
import { captureIO } from '../test-io';

const examples = join(__dirname, '..', '..', '..', '..', 'examples', 'configs');

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO();
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe('posttrain ppo / grpo', { timeout: 400_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-cli-rl-'));
  const model = join(dir, 'model');
  const data = join(dir, 'data');

  before(async () => {
    const tiny = join(dir, 'tiny.json');
    writeFileSync(tiny, JSON.stringify({ model_type: 'llama', vocab_size: 101, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, max_position_embeddings: 256, tie_word_embeddings: true, eos_token_id: 2, pad_token_id: 3 }));
    assert.equal((await cli(['model', 'init', '--out', model, '--config', tiny])).code, 0);
    assert.equal((await cli(['task', 'generate', '--out', data, '--sizes', '20', '--corpus', '20', '--preference', '20', '--prompts', '16', '--eval', '8'])).code, 0);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const common = (runId: string) => ['--set', `model=${model}`, '--set', `output_dir=${join(dir, 'runs')}`, '--set', `run_id=${runId}`, '--set', 'train.max_steps=2', '--set', `dataset.train=${join(data, 'prompts.jsonl')}`, '--no-progress', '--json'];

  test('grpo from the example spec starts its services, trains, pushes weights and writes a run', async () => {
    const r = await cli(['grpo', '--config', join(examples, 'grpo.yaml'), ...common('grpo-test'), '--set', 'grpo.prompts_per_step=2', '--set', 'grpo.num_generations=4', '--set', 'grpo.mini_batch_size=8', '--set', 'grpo.max_completion_length=8']);
    assert.equal(r.code, 0, r.err + r.out);
    const result = JSON.parse(r.out.trim().split('\n').pop()!);
    assert.equal(result.status, 'completed');
    assert.equal(result.step, 2);
    assert.ok(result.weightsVersion >= 2, `weights version ${result.weightsVersion}`);
    const lines = readFileSync(join(dir, 'runs', 'grpo-test', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => 'objective/scores' in (l.metrics ?? l)), JSON.stringify(lines[0]).slice(0, 300));
    assert.ok(existsSync(join(dir, 'runs', 'grpo-test', 'model', 'model.safetensors')));
  });

  test('ppo from the example spec spreads rollouts over two samplers', async () => {
    const r = await cli(['ppo', '--config', join(examples, 'ppo.yaml'), ...common('ppo-test'), '--samplers', '2', '--set', 'ppo.prompts_per_step=4', '--set', 'ppo.mini_batch_size=4', '--set', 'ppo.max_completion_length=8']);
    assert.equal(r.code, 0, r.err + r.out);
    const result = JSON.parse(r.out.trim().split('\n').pop()!);
    assert.equal(result.status, 'completed');
    assert.ok(Number.isFinite(result.lastMetrics['objective/kl']));
    const spread = Object.keys(result.lastMetrics).filter((k) => /^rollout\/sampler_\d+$/.test(k)).map((k) => result.lastMetrics[k]);
    assert.equal(spread.length, 2, Object.keys(result.lastMetrics).join(','));
    assert.ok(spread.every((n) => n > 0), JSON.stringify(spread));
  });

  test('config mistakes are usage errors naming the key, the value and what was allowed', async () => {
    const cases: [string[], RegExp][] = [
      [['grpo', '--config', join(examples, 'grpo.yaml'), '--set', 'grpo.group_size=3'], /--set grpo\.group_size=3: unknown key "grpo\.group_size" \(known keys of grpo: prompts_per_step, num_generations, /],
      [['grpo', '--config', join(examples, 'ppo.yaml')], /stage is "ppo", but this is `posttrain grpo`/],
      [['ppo', '--config', join(examples, 'ppo.yaml'), '--set', 'ppo.kl_estimator=K9'], /ppo\.kl_estimator: expected one of "k1", "k2", "k3", got string "K9"/],
      [['ppo', '--config', join(examples, 'ppo.yaml'), '--set', 'seed=minus'], /--set seed=minus: expected an integer >= 0 and <= 4294967295, got "minus"/],
      [['grpo', '--config', join(examples, 'grpo.yaml'), '--set', 'train.batch_size=8'], /train\.batch_size: this key applies to stages "lm", "sft", "rm", "dpo" only, but stage is "grpo"/],
      [['grpo', '--config', join(examples, 'grpo.yaml'), '--set', `model=${model}`, '--set', `dataset.train=${join(data, 'prompts.jsonl')}`, '--set', 'grpo.services.sampler_addresses=127.0.0.1:1', '--set', 'grpo.services.reward_address=127.0.0.1:2'], /grpo\.services\.reference_address: got null, expected a ReferenceModel address \(beta is > 0\)/],
    ];
    for (const [argv, re] of cases) {
      const r = await cli(argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
    }
  });

  test('a model, data file or ptx file that is not there is a usage error before any service starts', async () => {
    const ppo = ['ppo', '--config', join(examples, 'ppo.yaml'), ...common('missing-inputs')];
    const cases: [string[], RegExp][] = [
      [[...ppo, '--set', 'model=/nonexistent/model'], /ppo\.yaml: model \/nonexistent\/model: no such directory/],
      [[...ppo, '--set', 'dataset.train=/nonexistent/prompts.jsonl'], /ppo\.yaml: dataset\.train: file "\/nonexistent\/prompts\.jsonl" does not exist/],
      [[...ppo, '--set', 'ppo.ptx_coef=0.1', '--set', 'ppo.ptx_dataset=/nonexistent/corpus.jsonl'], /ppo\.yaml: ppo\.ptx_dataset: file "\/nonexistent\/corpus\.jsonl" does not exist/],
      [[...ppo, '--set', `model=${data}`], new RegExp(`ppo\\.yaml: model ${data.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not a model directory \\(no config\\.json\\)`)],
      [[...ppo, '--reward-model', '/nonexistent/rm'], /--reward-model \/nonexistent\/rm: no such directory/],
    ];
    for (const [argv, re] of cases) {
      const r = await cli(argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
      assert.doesNotMatch(r.err, /starting .* on loopback/, 'no service was started');
    }
  });

  test('--metrics-port, --metrics-host and --metrics-linger-s are checked before any service starts', async () => {
    const busy = createServer();
    await new Promise<void>((ok) => busy.listen(0, '127.0.0.1', () => ok()));
    const port = (busy.address() as AddressInfo).port;
    try {
      const grpo = ['grpo', '--config', join(examples, 'grpo.yaml')];
      const cases: [string[], RegExp][] = [
        [[...grpo, '--metrics-port', '70000'], /--metrics-port: got "70000", expected a value <= 65535/],
        [[...grpo, '--metrics-port', 'nine'], /--metrics-port: got "nine", expected an integer/],
        [[...grpo, '--metrics-port', '0', '--metrics-linger-s', '-1'], /--metrics-linger-s: got "-1", expected a value >= 0/],
        [[...grpo, '--metrics-port', String(port)], new RegExp(`--metrics-port ${port} --metrics-host 127\\.0\\.0\\.1: cannot serve /metrics there \\(.*EADDRINUSE.*\\); expected a free port on a local address`)],
        [[...grpo, '--metrics-port', '0', '--metrics-host', '192.0.2.1'], /--metrics-port 0 --metrics-host 192\.0\.2\.1: cannot serve \/metrics there \(.*EADDRNOTAVAIL.*\)/],
      ];
      for (const [argv, re] of cases) {
        const r = await cli(argv);
        assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
        assert.match(r.err, re);
        assert.doesNotMatch(r.err, /starting .* on loopback/, 'no service was started');
      }
    } finally {
      await new Promise<void>((ok) => busy.close(() => ok()));
    }
  });
});
