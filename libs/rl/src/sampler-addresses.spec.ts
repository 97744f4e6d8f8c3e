import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AddressSourceError, dnsAddressSource, fileAddressSource, firstAddresses, parseAddressFile, parseDnsTarget, parseHostPort, samplerAddressSource } from './sampler-addresses';

const rejectsWith = (promise: Promise<unknown>, message: RegExp, retryable: boolean) =>
  assert.rejects(promise, (e: unknown) => e instanceof AddressSourceError && message.test(e.message) && e.retryable === retryable, message.source);

describe('sampler address sources', () => {
  test('host:port parsing: names, IPv4, bracketed IPv6; the port in 1..65535; dns:/// accepted for sampler_dns', () => {
    assert.deepEqual(parseHostPort('samplers.ns.svc:50051'), { host: 'samplers.ns.svc', port: 50051 });
    assert.deepEqual(parseHostPort('[fd00::1]:7000'), { host: 'fd00::1', port: 7000 });
    for (const bad of ['host', 'host:0', 'host:65536', ':80', 'a b:1', 'fd00::1:80', 'http://x:1']) assert.equal(parseHostPort(bad), null, bad);
    assert.deepEqual(parseDnsTarget('dns:///samplers.ns.svc:50051'), { host: 'samplers.ns.svc', port: 50051 });
    assert.equal(parseDnsTarget('[fd00::1]:1'), null, 'an IP literal is not a name to resolve');
  });

  test('an address file: one host:port a line, blank lines and # comments ignored, duplicates once, in file order; a bad line named with its number', () => {
    const text = '# samplers\n\n10.0.0.2:50051   # second\n10.0.0.1:50051\r\n  10.0.0.2:50051\n[fd00::3]:50051\n';
    assert.deepEqual(parseAddressFile(text, 'f'), ['10.0.0.2:50051', '10.0.0.1:50051', '[fd00::3]:50051']);
    assert.throws(() => parseAddressFile('10.0.0.1:50051\nsampler-2\n', '/etc/samplers'), /^AddressSourceError: \/etc\/samplers:2: got "sampler-2", expected host:port \(a port in 1\.\.65535\) or a # comment$/);
  });

  test('sampler_file is re-read on every resolve: an edit adds and removes replicas; missing is a hard error, empty a retryable one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'posttrain-addresses-'));
    const path = join(dir, 'samplers.txt');
    try {
      const source = fileAddressSource(path, 2_000);
      assert.equal(source.refreshMs, 2_000);
      await rejectsWith(source.resolve(), /sampler_file .*samplers\.txt: the file does not exist/, false);
      await writeFile(path, '127.0.0.1:5001\n127.0.0.1:5002\n');
      assert.deepEqual(await source.resolve(), ['127.0.0.1:5001', '127.0.0.1:5002']);
      await writeFile(path, '127.0.0.1:5002\n127.0.0.1:5003 # added\n');
      assert.deepEqual(await source.resolve(), ['127.0.0.1:5002', '127.0.0.1:5003']);
      await writeFile(path, '# nobody yet\n');
      await rejectsWith(source.resolve(), /no address in the file, expected at least one host:port line/, true);
      await writeFile(path, 'oops\n');
      await rejectsWith(source.resolve(), /samplers\.txt:1: got "oops"/, false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('sampler_dns asks the resolver on every resolve and pairs each address with the port; resolver errors are retryable', async () => {
    const answers: (string[] | Error)[] = [['10.0.0.2', '10.0.0.1'], ['10.0.0.1', '10.0.0.3', 'fd00::4', '10.0.0.3'], Object.assign(new Error('queryA ENOTFOUND samplers.ns.svc'), { code: 'ENOTFOUND' }), []];
    const asked: string[] = [];
    const source = dnsAddressSource('samplers.ns.svc', 50051, 5_000, async (host) => {
      asked.push(host);
      const answer = answers.shift()!;
      if (answer instanceof Error) throw answer;
      return answer;
    });
    assert.equal(source.description, 'sampler_dns samplers.ns.svc:50051');
    assert.deepEqual(await source.resolve(), ['10.0.0.1:50051', '10.0.0.2:50051']);
    assert.deepEqual(await source.resolve(), ['10.0.0.1:50051', '10.0.0.3:50051', '[fd00::4]:50051']);
    await rejectsWith(source.resolve(), /^sampler_dns samplers\.ns\.svc:50051: ENOTFOUND queryA ENOTFOUND/, true);
    await rejectsWith(source.resolve(), /the name has no address/, true);
    assert.deepEqual(asked, Array(4).fill('samplers.ns.svc'));
  });

  test('the system resolver finds localhost (no network needed)', async () => {
    const addresses = await samplerAddressSource({ kind: 'dns', host: 'localhost', port: 7, refreshSeconds: 1 }).resolve();
    assert.ok(addresses.length >= 1 && addresses.every((a) => a.endsWith(':7')), addresses.join(', '));
  });

  test('firstAddresses waits while the source has nobody yet, and gives up after waitMs or on a hard error', async () => {
    let calls = 0;
    const slow = dnsAddressSource('s', 1, 1_000, async () => (++calls < 3 ? [] : ['10.0.0.9']));
    assert.deepEqual(await firstAddresses(slow, 10_000), ['10.0.0.9:1']);
    assert.equal(calls, 3);
    const never = dnsAddressSource('s', 1, 1_000, async () => []);
    const began = Date.now();
    await rejectsWith(firstAddresses(never, 1_500), /the name has no address/, true);
    assert.ok(Date.now() - began >= 1_400, 'waited for the window');
    await rejectsWith(firstAddresses(fileAddressSource('/nonexistent/samplers.txt', 1_000), 60_000), /does not exist/, false);
  });
});
