import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { createLogger } from '@posttrain/telemetry';
import { ConfigError } from '@posttrain/flags';
import { createClient } from './client';
import { PosttrainServer } from './server';
import { EchoService, type EchoRequest, type EchoResponse } from './test-support';
import { clientTlsFromEnv, loadServerTls, type ClientTls } from './tls';
import { makeTestCertificates } from './test-certificates';
import { checkHealth } from './health';

const quiet = createLogger({ service: 'test', level: 'silent' });

async function echoServer(tls: ReturnType<typeof loadServerTls>): Promise<{ server: PosttrainServer; address: string }> {
  const server = new PosttrainServer({ name: 'tls-echo', host: '127.0.0.1', port: 0, shutdownGraceMs: 100, log: quiet, tls });
  server.add('test.Echo', EchoService, {
    echo: async (req: EchoRequest): Promise<EchoResponse> => ({ text: req.text, replica: 'tls' }),
    repeat: async function* () {},
    join: async () => ({ text: '', replica: 'tls' }),
  });
  const { address } = await server.start();
  server.setServing(true);
  return { server, address };
}

describe('TLS and mutual TLS on loopback, certificates from openssl', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-tls-'));
  const file = (name: string) => join(dir, name);
  let tlsOnly: { server: PosttrainServer; address: string };
  let mutual: { server: PosttrainServer; address: string };

  before(async () => {
    makeTestCertificates(dir);
    tlsOnly = await echoServer(loadServerTls({ cert: file('server.pem'), key: file('server.key') }));
    mutual = await echoServer(loadServerTls({ cert: file('server.pem'), key: file('server.key'), clientCa: file('ca.pem') }));
  });
  after(async () => {
    await Promise.all([tlsOnly?.server.shutdown(), mutual?.server.shutdown()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const call = (address: string, tls: ClientTls | false) => {
    const client = createClient(EchoService, [address], { tls, maxAttempts: 1, deadlineMs: 5_000 });
    return client.unary('echo', { text: 'over tls' }).finally(() => client.close());
  };
  const fails = (e: ServiceError) => e.code === status.UNAVAILABLE;

  test('a TLS client that trusts the CA succeeds; a plaintext client fails', async () => {
    assert.equal((await call(tlsOnly.address, { ca: readFileSync(file('ca.pem')) })).text, 'over tls');
    await assert.rejects(call(tlsOnly.address, false), fails);
  });

  test('a client that does not trust the CA is refused (the server certificate does not verify)', async () => {
    await assert.rejects(call(tlsOnly.address, {}), fails); // system roots only
  });

  test('mutual TLS: a client with a certificate from the CA succeeds; one without a certificate, and a plaintext one, fail', async () => {
    const ca = readFileSync(file('ca.pem'));
    assert.equal((await call(mutual.address, { ca, cert: readFileSync(file('client.pem')), key: readFileSync(file('client.key')) })).text, 'over tls');
    await assert.rejects(call(mutual.address, { ca }), fails);
    await assert.rejects(call(mutual.address, false), fails);
  });

  test('clients read their TLS from POSTTRAIN_TLS_CA / _CLIENT_CERT / _CLIENT_KEY', async () => {
    const env = { POSTTRAIN_TLS_CA: file('ca.pem'), POSTTRAIN_TLS_CLIENT_CERT: file('client.pem'), POSTTRAIN_TLS_CLIENT_KEY: file('client.key') };
    assert.equal((await call(mutual.address, clientTlsFromEnv(env)!)).text, 'over tls');
    assert.equal(clientTlsFromEnv({}), undefined);
    assert.throws(() => clientTlsFromEnv({ POSTTRAIN_TLS_CLIENT_CERT: file('client.pem') }), /POSTTRAIN_TLS_CLIENT_CERT and POSTTRAIN_TLS_CLIENT_KEY: got only the certificate, expected both or neither/);
  });

  test('with TLS, a plaintext health port answers grpc.health.v1 as the TLS port would (for the kubelet\'s gRPC probes), and closes on shutdown', async () => {
    const tls = loadServerTls({ cert: file('server.pem'), key: file('server.key'), clientCa: file('ca.pem') });
    const server = new PosttrainServer({ name: 'tls-health', host: '127.0.0.1', port: 0, shutdownGraceMs: 100, log: quiet, tls, healthPort: 0 });
    const started = await server.start();
    assert.ok(started.healthPort && started.healthPort !== started.port, JSON.stringify(started));
    const health = `127.0.0.1:${started.healthPort}`;
    try {
      assert.equal(await checkHealth(health), 'NOT_SERVING');
      server.setServing(true);
      assert.equal(await checkHealth(health), 'SERVING');
      // The health port serves nothing else; the TLS port still refuses plaintext.
      await assert.rejects(call(health, false), (e: ServiceError) => e.code === status.UNIMPLEMENTED);
      await assert.rejects(checkHealth(started.address), (e: ServiceError) => e.code === status.UNAVAILABLE);
    } finally {
      await server.shutdown();
    }
    await assert.rejects(checkHealth(health), (e: ServiceError) => e.code === status.UNAVAILABLE);
  });

  test('bad server TLS options name the option', () => {
    assert.throws(() => loadServerTls({ cert: file('server.pem') }), (e: Error) => e instanceof ConfigError && /^--tls-cert and --tls-key .*: got only the certificate, expected both/.test(e.message));
    assert.throws(() => loadServerTls({ clientCa: file('ca.pem') }), /got neither, expected both \(--tls-client-ca needs them\)/);
    assert.throws(() => loadServerTls({ cert: file('nope.pem'), key: file('server.key') }), /^ConfigError: --tls-cert: cannot read ".*nope\.pem" \(ENOENT\)/);
    assert.throws(() => loadServerTls({ cert: file('server.ext'), key: file('server.key') }), /--tls-cert: ".*server\.ext" is not a PEM file/);
    assert.equal(loadServerTls({}), undefined);
  });
});
