import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RunSpec } from '@posttrain/proto';
import { RpcError, status } from '@posttrain/rpc';
import { resolveRlRunConfig } from '@posttrain/rl';
import { loadRunConfig, type RunConfig } from '@posttrain/training';
import { configToRunSpec } from './config-to-run-spec';
import { runSpecToConfig, runSpecToRlRunConfig } from './run-spec-to-config';

const examples = join(__dirname, '..', '..', '..', 'examples', 'configs');

/** The RunSpec as the Trainer receives it: encoded and decoded. */
const overTheWire = (spec: RunSpec) => RunSpec.decode(RunSpec.encode(spec).finish());

/** The services `posttrain ppo|grpo` would start (or the Trainer's own) for a config that names none. */
function withServices(config: RunConfig): RunConfig {
  const section = config.ppo ?? config.grpo;
  if (section) section.services = { sampler_addresses: ['127.0.0.1:1', '127.0.0.1:2'], reference_address: '127.0.0.1:3', reward_address: '127.0.0.1:4' };
  return config;
}

describe('the Trainer accepts the same content as a config file', () => {
  const files = readdirSync(examples).filter((file) => file.endsWith('.yaml'));

  test('examples/configs has the seven stage configs', () => {
    assert.deepEqual(files.sort(), ['dpo.yaml', 'grpo.yaml', 'lm.yaml', 'ppo.yaml', 'rm.yaml', 'sft-lora.yaml', 'sft.yaml']);
  });

  for (const file of files) {
    test(`${file}: the config resolved from the file equals the one resolved from its RunSpec at the Trainer's edge`, async () => {
      const config = withServices(await loadRunConfig(join(examples, file)));
      if (config.stage === 'lm') {
        assert.throws(() => configToRunSpec(config), /stage: the Trainer runs sft, rm, dpo, ppo and grpo, not "lm"/);
        return;
      }
      const spec = overTheWire(configToRunSpec(config));
      const fromSpec = runSpecToConfig(spec, config.output_dir, config.run_id!);
      if (config.stage === 'ppo' || config.stage === 'grpo') assert.deepEqual(resolveRlRunConfig(fromSpec), resolveRlRunConfig(config));
      else assert.deepEqual(fromSpec, config);
    });
  }

  test('a key a RunSpec has no field for is refused by the converter, not dropped', async () => {
    const config = await loadRunConfig(join(examples, 'sft.yaml'), ['dataset.error_policy=skip']);
    assert.throws(() => configToRunSpec(config), /dataset\.error_policy: a RunSpec has no field for it; expected "fail" \(the default\), got "skip"/);
  });

  test('sampler_dns, sampler_file and sampler_refresh_seconds cross the wire: the elastic pool a config names is the one the Trainer runs', async () => {
    const dns = await loadRunConfig(join(examples, 'grpo.yaml'), ['grpo.services.sampler_dns=samplers.ns.svc:50051', 'grpo.services.sampler_refresh_seconds=2.5', 'grpo.services.reference_address=127.0.0.1:3', 'grpo.services.reward_address=127.0.0.1:4']);
    const fromDns = runSpecToConfig(overTheWire(configToRunSpec(dns)), dns.output_dir, dns.run_id!);
    assert.deepEqual(resolveRlRunConfig(fromDns).samplerSource, { kind: 'dns', host: 'samplers.ns.svc', port: 50051, refreshSeconds: 2.5 });
    assert.deepEqual(resolveRlRunConfig(fromDns), resolveRlRunConfig(dns));
    const file = await loadRunConfig(join(examples, 'ppo.yaml'), ['ppo.services.sampler_file=/data/samplers.txt', 'ppo.services.reference_address=127.0.0.1:3', 'ppo.services.reward_address=127.0.0.1:4']);
    const fromFile = runSpecToConfig(overTheWire(configToRunSpec(file)), file.output_dir, file.run_id!);
    assert.deepEqual(resolveRlRunConfig(fromFile).samplerSource, { kind: 'file', path: '/data/samplers.txt', refreshSeconds: 10 });
  });

  test('a RunSpec naming two sampler sources, or a refresh period for a fixed list, is INVALID_ARGUMENT naming the field', async () => {
    const spec = overTheWire(configToRunSpec(withServices(await loadRunConfig(join(examples, 'grpo.yaml')))));
    const services = (spec.stage!.value as { services: { samplerDns: string; samplerRefreshSeconds: number } }).services;
    services.samplerDns = 'samplers:50051';
    assert.throws(
      () => runSpecToRlRunConfig(spec, 'runs', 'grpo'),
      (err: unknown) => err instanceof RpcError && err.code === status.INVALID_ARGUMENT && /^spec\.grpo\.services\.sampler_dns: grpo\.services\.sampler_dns: set together with sampler_addresses; expected exactly one of/.test(err.message),
    );
    services.samplerDns = '';
    services.samplerRefreshSeconds = 5;
    assert.throws(
      () => runSpecToRlRunConfig(spec, 'runs', 'grpo'),
      (err: unknown) => err instanceof RpcError && /^spec\.grpo\.services\.sampler_refresh_seconds: grpo\.services\.sampler_refresh_seconds: got 5, expected null: a fixed sampler_addresses list is not refreshed/.test(err.message),
    );
  });

  test('dpo.beta: unset means 0.1; 0 is INVALID_ARGUMENT naming spec.dpo.beta, not the default', async () => {
    const config = await loadRunConfig(join(examples, 'dpo.yaml'));
    const spec = overTheWire(configToRunSpec(config));
    const dpo = spec.stage!.value as { beta?: number };
    dpo.beta = undefined;
    assert.equal(runSpecToConfig(spec, 'runs', 'dpo').dpo!.beta, 0.1);
    dpo.beta = 0;
    assert.throws(
      () => runSpecToConfig(overTheWire(spec), 'runs', 'dpo'),
      (err: unknown) => err instanceof RpcError && err.code === status.INVALID_ARGUMENT && /^spec\.dpo\.beta: dpo\.beta: expected a finite number > 0, got number 0$/.test(err.message),
    );
  });

  test('dpo.rpo_alpha crosses the wire; unset stays plain DPO (null), a negative one is INVALID_ARGUMENT naming spec.dpo.rpo_alpha', async () => {
    const config = await loadRunConfig(join(examples, 'dpo.yaml'));
    assert.equal(runSpecToConfig(overTheWire(configToRunSpec(config)), 'runs', 'dpo').dpo!.rpo_alpha, null);
    config.dpo!.rpo_alpha = 0.5;
    const spec = overTheWire(configToRunSpec(config));
    assert.equal(runSpecToConfig(spec, 'runs', 'dpo').dpo!.rpo_alpha, 0.5);
    (spec.stage!.value as { rpoAlpha?: number }).rpoAlpha = -1;
    assert.throws(
      () => runSpecToConfig(overTheWire(spec), 'runs', 'dpo'),
      (err: unknown) => err instanceof RpcError && err.code === status.INVALID_ARGUMENT && /^spec\.dpo\.rpo_alpha: dpo\.rpo_alpha: expected a finite number >= 0 or null, got number -1$/.test(err.message),
    );
  });

  test('PPO-ptx crosses the wire; a ptx_dataset without ptx_coef is INVALID_ARGUMENT naming spec.ppo.ptx_coef', async () => {
    const config = withServices(await loadRunConfig(join(examples, 'ppo.yaml'), ['ppo.ptx_coef=0.3', 'ppo.ptx_dataset=/data/corpus.jsonl', 'ppo.ptx_batch_size=4', 'ppo.ptx_max_length=128']));
    const spec = overTheWire(configToRunSpec(config));
    const resolved = runSpecToRlRunConfig(spec, config.output_dir, config.run_id!);
    assert.deepEqual(resolved.ppo!.ptx, { coefficient: 0.3, datasetPath: '/data/corpus.jsonl', batchSize: 4, maxLength: 128 });
    assert.deepEqual(resolved, resolveRlRunConfig(config));
    (spec.stage!.value as { ptxCoef: number }).ptxCoef = 0;
    assert.throws(
      () => runSpecToRlRunConfig(overTheWire(spec), 'runs', 'ppo'),
      (err: unknown) => err instanceof RpcError && err.code === status.INVALID_ARGUMENT && /^spec\.ppo\.ptx_coef: ppo\.ptx_coef: got 0 with ptx_dataset "\/data\/corpus\.jsonl", expected a weight > 0/.test(err.message),
    );
  });

  test('the critic\'s learning rate and frozen actor steps cross the wire; too many frozen steps is INVALID_ARGUMENT naming spec.ppo.freezing_actor_steps', async () => {
    const config = withServices(await loadRunConfig(join(examples, 'ppo.yaml'), ['ppo.critic_learning_rate=9e-6', 'ppo.freezing_actor_steps=5']));
    const spec = overTheWire(configToRunSpec(config));
    const resolved = runSpecToRlRunConfig(spec, config.output_dir, config.run_id!);
    assert.equal(resolved.ppo!.criticLearningRate, 9e-6);
    assert.equal(resolved.ppo!.freezingActorSteps, 5);
    assert.deepEqual(resolved, resolveRlRunConfig(config));
    // Unset on the wire: the policy's rate, no frozen steps.
    const plain = runSpecToRlRunConfig(overTheWire(configToRunSpec(withServices(await loadRunConfig(join(examples, 'ppo.yaml'))))), config.output_dir, config.run_id!);
    assert.equal(plain.ppo!.criticLearningRate, null);
    assert.equal(plain.ppo!.freezingActorSteps, 0);
    (spec.stage!.value as { freezingActorSteps: number }).freezingActorSteps = 50; // ppo.yaml's max_steps
    assert.throws(
      () => runSpecToRlRunConfig(overTheWire(spec), 'runs', 'ppo'),
      (err: unknown) => err instanceof RpcError && err.code === status.INVALID_ARGUMENT && /^spec\.ppo\.freezing_actor_steps: ppo\.freezing_actor_steps: got 50 with train\.max_steps 50, expected fewer than max_steps/.test(err.message),
    );
  });

  test('missing_eos_penalty and mask_truncated_completions cross the wire; a negative penalty is INVALID_ARGUMENT naming spec.grpo.missing_eos_penalty', async () => {
    const config = withServices(await loadRunConfig(join(examples, 'grpo.yaml'), ['grpo.missing_eos_penalty=0.5', 'grpo.mask_truncated_completions=true']));
    const spec = overTheWire(configToRunSpec(config));
    const resolved = runSpecToRlRunConfig(spec, config.output_dir, config.run_id!);
    assert.equal(resolved.missingEosPenalty, 0.5);
    assert.equal(resolved.grpo!.maskTruncated, true);
    assert.deepEqual(resolved, resolveRlRunConfig(config));
    const ppo = withServices(await loadRunConfig(join(examples, 'ppo.yaml'), ['ppo.missing_eos_penalty=2']));
    assert.equal(runSpecToRlRunConfig(overTheWire(configToRunSpec(ppo)), ppo.output_dir, ppo.run_id!).missingEosPenalty, 2);
    // Unset on the wire: no penalty, no mask.
    const plain = runSpecToRlRunConfig(overTheWire(configToRunSpec(withServices(await loadRunConfig(join(examples, 'grpo.yaml'))))), config.output_dir, config.run_id!);
    assert.equal(plain.missingEosPenalty, null);
    assert.equal(plain.grpo!.maskTruncated, false);
    (spec.stage!.value as { missingEosPenalty: number }).missingEosPenalty = -1;
    assert.throws(
      () => runSpecToRlRunConfig(overTheWire(spec), 'runs', 'grpo'),
      (err: unknown) => err instanceof RpcError && err.code === status.INVALID_ARGUMENT && /^spec\.grpo\.missing_eos_penalty: /.test(err.message),
    );
  });

  test('RL errors name the RunSpec field and the config key', async () => {
    const spec = overTheWire(configToRunSpec(withServices(await loadRunConfig(join(examples, 'grpo.yaml')))));
    const grpo = spec.stage!.value as { groupSize: number; kl?: { estimator: number } };
    grpo.groupSize = 1;
    assert.throws(() => runSpecToConfig(spec, 'runs', 'grpo'), (err: unknown) => err instanceof RpcError && /^spec\.grpo\.group_size: grpo\.num_generations: expected an integer >= 2, got number 1$/.test(err.message));
    grpo.groupSize = 8;
    grpo.kl!.estimator = 9;
    assert.throws(() => runSpecToConfig(spec, 'runs', 'grpo'), (err: unknown) => err instanceof RpcError && /^spec\.grpo\.kl\.estimator: got 9, expected one of 0, 1, 2, 3$/.test(err.message));
  });
});
