import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalServices } from './local-services';

describe('startLocalServices', { timeout: 120_000 }, () => {
  test('a service that listens and then dies (a model it cannot load) is reported at once with its output, not after the startup timeout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'posttrain-bad-model-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', vocab_size: -4 }));
    const started = Date.now();
    await assert.rejects(
      startLocalServices([{ name: 'reference', label: 'reference', args: ['--model', dir] }], { host: '127.0.0.1', startupTimeoutMs: 100_000 }),
      (err: Error) => /^reference exited \(code \d+\) before it was (ready|SERVING); last output:/.test(err.message) && /service failed to become ready/.test(err.message) && /config\.json: \\"hidden_size\\" is undefined/.test(err.message),
    );
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds < 60, `reported after ${seconds} s, well before the 100 s timeout`);
  });
});
