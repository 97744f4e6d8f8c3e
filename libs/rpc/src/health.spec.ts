import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { waitForServing } from './health';

/** A loopback port with nothing listening on it. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', () => ok()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}

describe('waitForServing', () => {
  test('an abort stops the wait at once, naming the reason and the last status', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort('the service exited'), 300);
    await assert.rejects(waitForServing(address, { timeoutMs: 30_000, signal: ac.signal }), new RegExp(`^Error: ${address}: stopped waiting for SERVING \\(the service exited\\); last status: UNAVAILABLE \\(not listening yet\\)$`));
    assert.ok(Date.now() - started < 5_000, 'well before the 30 s timeout');
  });

  test('without an abort, nothing listening is a timeout naming the last status', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    await assert.rejects(waitForServing(address, { timeoutMs: 500 }), /did not become SERVING within 500 ms; last status: UNAVAILABLE \(not listening yet\)/);
  });
});
