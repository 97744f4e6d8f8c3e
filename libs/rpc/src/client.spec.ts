import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { status, type ServiceError } from '@grpc/grpc-js';
import { createLogger } from '@posttrain/telemetry';
import { PosttrainServer } from './server';
import { createClient } from './client';
import { EchoService, type EchoRequest, type EchoResponse } from './test-support';

const quiet = createLogger({ service: 'test', level: 'silent' });

async function echoOn(port: number): Promise<{ server: PosttrainServer; port: number }> {
  const server = new PosttrainServer({ name: 'echo', host: '127.0.0.1', port, shutdownGraceMs: 100, log: quiet });
  server.add('test.Echo', EchoService, {
    echo: async (req: EchoRequest): Promise<EchoResponse> => ({ text: req.text, replica: 'echo' }),
    repeat: async function* () {},
    join: async () => ({ text: '', replica: 'echo' }),
  });
  const started = await server.start();
  server.setServing(true);
  return { server, port: started.port };
}

/** A loopback port that was free a moment ago (a server bound it, then let it go). */
async function freePort(): Promise<number> {
  const { server, port } = await echoOn(0);
  await server.shutdown();
  return port;
}

describe('RpcClient: waiting for a restarting replica, errors that name it', { timeout: 30_000 }, () => {
  test('with a retry window, a call made while the server is down succeeds once it comes back on the same port', async () => {
    const port = await freePort();
    const client = createClient(EchoService, [`127.0.0.1:${port}`], { retryWindowMs: 10_000, deadlineMs: 2_000, maxBackoffMs: 300, channelOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 300 } });
    const began = Date.now();
    let back: PosttrainServer | undefined;
    const restart = new Promise<void>((resolve) => setTimeout(() => void echoOn(port).then((s) => ((back = s.server), resolve())), 1_500));
    try {
      const res = await client.unary('echo', { text: 'hi' });
      const waited = Date.now() - began;
      assert.equal(res.text, 'hi');
      assert.ok(waited >= 1_400 && waited < 8_000, `the call waited ${waited} ms for the server that came back after 1500 ms`);
    } finally {
      await restart;
      client.close();
      await back?.shutdown();
    }
  });

  test('past the retry window the call fails UNAVAILABLE, naming the service, its address and how long it waited', async () => {
    const port = await freePort();
    const client = createClient(EchoService, [`127.0.0.1:${port}`], { retryWindowMs: 800, maxBackoffMs: 200, serviceLabel: 'reward service' });
    const began = Date.now();
    await assert.rejects(client.unary('echo', { text: 'hi' }), (e: ServiceError) => {
      assert.equal(e.code, status.UNAVAILABLE);
      assert.match(e.message, new RegExp(`^reward service at 127\\.0\\.0\\.1:${port}: 14 UNAVAILABLE`));
      assert.match(e.message, /still UNAVAILABLE after \d+ attempt\(s\) over \d+ ms; retry window 800 ms/);
      return true;
    });
    const took = Date.now() - began;
    assert.ok(took >= 500 && took < 5_000, `gave up after ${took} ms for a window of 800 ms`);
    client.close();
  });

  test('without a label the gRPC service name is used; without a window one attempt fails at once', async () => {
    const port = await freePort();
    const client = createClient(EchoService, [`127.0.0.1:${port}`], { maxAttempts: 1 });
    const began = Date.now();
    await assert.rejects(client.unary('echo', { text: 'hi' }), (e: ServiceError) => e.code === status.UNAVAILABLE && e.message.startsWith(`test.Echo at 127.0.0.1:${port}: `));
    assert.ok(Date.now() - began < 3_000);
    client.close();
  });

  test('a bad retry window is refused', () => {
    assert.throws(() => createClient(EchoService, ['127.0.0.1:1'], { retryWindowMs: -1 }), /retryWindowMs: got -1, expected a number of milliseconds >= 0/);
  });
});
