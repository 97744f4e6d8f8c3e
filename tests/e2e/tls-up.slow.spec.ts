import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { RewardScorerService, TrainerService } from '@posttrain/proto';
import { clientTlsFromEnv, createClient, makeTestCertificates, status } from '@posttrain/rpc';

// `posttrain up` with mutual TLS on every service, from the environment: the
// services take POSTTRAIN_TLS_CERT / _KEY / _CLIENT_CA, and every client (up's
// own health checks, the test's) POSTTRAIN_TLS_CA / _CLIENT_CERT / _CLIENT_KEY.
const root = join(__dirname, '..', '..');

describe('posttrain up with mutual TLS', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-up-tls-'));
  const file = (n: string) => join(dir, n);
  let up: ChildProcess;
  let services: Record<string, string[]> = {};
  const stderr: string[] = [];
  let env: Record<string, string> = {};

  before(async () => {
    makeTestCertificates(dir);
    env = {
      POSTTRAIN_TLS_CERT: file('server.pem'),
      POSTTRAIN_TLS_KEY: file('server.key'),
      POSTTRAIN_TLS_CLIENT_CA: file('ca.pem'),
      POSTTRAIN_TLS_CA: file('ca.pem'),
      POSTTRAIN_TLS_CLIENT_CERT: file('client.pem'),
      POSTTRAIN_TLS_CLIENT_KEY: file('client.key'),
    };
    up = spawn(process.execPath, [join(root, 'bin', 'posttrain.js'), 'up', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, POSTTRAIN_LOG_LEVEL: 'warn', POSTTRAIN_RUNS_DIR: join(dir, 'runs') } });
    createInterface({ input: up.stderr! }).on('line', (l) => stderr.push(l));
    services = await new Promise((resolve, reject) => {
      createInterface({ input: up.stdout! }).on('line', (line) => resolve((JSON.parse(line) as { services: Record<string, string[]> }).services));
      up.once('exit', (code) => reject(new Error(`posttrain up exited with ${code}: ${stderr.join('\n')}`)));
    });
  });
  after(async () => {
    if (up?.exitCode === null) {
      up.kill('SIGTERM');
      await new Promise((r) => up.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('every service answers a client with a certificate from the CA; a plaintext client and one without a certificate are refused', async () => {
    const tls = clientTlsFromEnv(env)!;
    const reward = createClient(RewardScorerService, services.reward, { tls, maxAttempts: 1 });
    const res = await reward.unary('score', { items: [{ id: 'a', prompt: 'p', promptMessages: [], completion: '42', completionTokenIds: [] }], components: [{ name: 'digit', weight: 1, rule: { $case: 'regex', value: { pattern: '[0-9]', flags: '', fullMatch: false, negate: false } } }] });
    assert.equal(res.scores[0].reward, 1);
    reward.close();
    const unavailable = (e: ServiceError) => e.code === status.UNAVAILABLE;
    for (const [name, addrs] of Object.entries(services)) {
      for (const address of addrs) {
        const withCert = createClient(TrainerService, [address], { tls, maxAttempts: 1, deadlineMs: 5_000 });
        const plaintext = createClient(TrainerService, [address], { tls: false, maxAttempts: 1, deadlineMs: 5_000 });
        const noCert = createClient(TrainerService, [address], { tls: { ca: tls.ca }, maxAttempts: 1, deadlineMs: 5_000 });
        // Any answer but UNAVAILABLE means the TLS handshake went through (other services answer UNIMPLEMENTED for Trainer methods).
        await withCert.unary('listRuns', { pageSize: 1, pageToken: '' }).then(
          () => assert.equal(name, 'trainer'),
          (e: ServiceError) => assert.equal(e.code, status.UNIMPLEMENTED, `${name} at ${address}: ${e.message}`),
        );
        await assert.rejects(plaintext.unary('listRuns', { pageSize: 1, pageToken: '' }), unavailable, `${name}: plaintext`);
        await assert.rejects(noCert.unary('listRuns', { pageSize: 1, pageToken: '' }), unavailable, `${name}: no client certificate`);
        for (const c of [withCert, plaintext, noCert]) c.close();
      }
    }
  });
});
