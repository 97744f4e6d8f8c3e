import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@posttrain/flags';
import { defaultRolloutServices, defaultSamplerSource, namesServices, type DefaultServiceFlags } from './default-services';

const flags = (over: Partial<DefaultServiceFlags>): DefaultServiceFlags => ({ samplerAddresses: [], samplerDns: '', samplerFile: '', samplerRefreshSeconds: 10, referenceAddress: 'ref:1', rewardAddress: 'rew:2', ...over });

describe("the Trainer's default services", () => {
  test('one sampler source at most, each flag named in the error', () => {
    assert.throws(() => defaultRolloutServices(flags({ samplerAddresses: ['a:1'], samplerDns: 's:2' })), (e: unknown) => e instanceof ConfigError && e.message === '--sampler-dns: set together with --sampler-addresses; expected at most one of --sampler-addresses, --sampler-dns, --sampler-file');
    assert.throws(() => defaultRolloutServices(flags({ samplerDns: 's:2', samplerFile: '/f' })), /^ConfigError: --sampler-file: set together with --sampler-dns/);
    assert.throws(() => defaultRolloutServices(flags({ samplerDns: 'policy-sampler' })), /^ConfigError: --sampler-dns: got "policy-sampler", expected name:port/);
  });

  test('a fixed list carries no refresh period; an elastic source carries its own', () => {
    assert.equal(defaultRolloutServices(flags({ samplerAddresses: ['a:1'], samplerRefreshSeconds: 3 })).samplerRefreshSeconds, 0);
    assert.deepEqual(defaultRolloutServices(flags({ samplerDns: 'dns:///policy-sampler:50051', samplerRefreshSeconds: 3 })), {
      samplerAddresses: [],
      samplerDns: 'dns:///policy-sampler:50051',
      samplerFile: '',
      samplerRefreshSeconds: 3,
      referenceAddress: 'ref:1',
      rewardAddress: 'rew:2',
    });
  });

  test("a spec names services when any address or source is set; the dashboard polls the elastic source's replicas", async () => {
    assert.equal(namesServices(undefined), false);
    assert.equal(namesServices(defaultRolloutServices(flags({ referenceAddress: '', rewardAddress: '' }))), false);
    assert.equal(namesServices(defaultRolloutServices(flags({ samplerFile: '/f', referenceAddress: '', rewardAddress: '' }))), true);
    assert.equal(defaultSamplerSource(defaultRolloutServices(flags({ samplerAddresses: ['a:1'] }))), undefined);
    const file = join(mkdtempSync(join(tmpdir(), 'posttrain-default-services-')), 'samplers.txt');
    writeFileSync(file, '127.0.0.1:7001\n# a comment\n127.0.0.1:7002\n');
    const source = defaultSamplerSource(defaultRolloutServices(flags({ samplerFile: file, samplerRefreshSeconds: 2 })))!;
    assert.equal(source.refreshMs, 2000);
    assert.deepEqual(await source.resolve(), ['127.0.0.1:7001', '127.0.0.1:7002']);
    assert.equal(defaultSamplerSource(defaultRolloutServices(flags({ samplerDns: 'localhost:50051' })))!.description, 'sampler_dns localhost:50051');
  });
});
