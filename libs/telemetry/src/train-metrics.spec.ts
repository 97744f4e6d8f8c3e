import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTrainMetricsServer } from './train-metrics';

const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const value = (text: string, name: string) => {
  const line = text.split('\n').find((l) => l.startsWith(name + '{') || l.startsWith(name + ' '));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

describe('startTrainMetricsServer', () => {
  test('serves the step, total steps, loss, reward, KL and push seconds of the last step, labelled', async () => {
    const server = await startTrainMetricsServer(0, '127.0.0.1', { service: 'posttrain-grpo', run_id: 'r1' });
    try {
      server.update(1, 3, { 'loss/policy': 0.5, 'objective/scores': 0.25, 'objective/kl': 0.01, 'time/push_seconds': 0.2 });
      server.update(2, 3, { 'loss/policy': -0.125, 'objective/scores': 0.75, 'objective/kl': Number.NaN });
      const text = await scrape(server.port);
      assert.match(text, /posttrain_train_step\{service="posttrain-grpo",run_id="r1"\} 2/);
      assert.equal(value(text, 'posttrain_train_total_steps'), 3);
      assert.equal(value(text, 'posttrain_train_loss'), -0.125);
      assert.equal(value(text, 'posttrain_train_reward'), 0.75);
      assert.equal(value(text, 'posttrain_train_kl'), 0.01, 'a non-finite value leaves the gauge as it was');
      assert.equal(value(text, 'posttrain_train_push_seconds'), 0.2, 'a missing key leaves the gauge as it was');
      assert.ok(value(text, 'posttrain_process_cpu_user_seconds_total')! >= 0, 'process metrics are there too');
    } finally {
      await server.close();
    }
  });

  test('close waits for a scrape of the last update (from a scraper seen before or a first one), within the bound', async () => {
    const server = await startTrainMetricsServer(0, '127.0.0.1', {});
    await scrape(server.port);
    server.update(5, 5, {});
    const late = new Promise<string>((ok) => setTimeout(() => ok(scrape(server.port)), 300));
    const started = Date.now();
    await server.close(10_000);
    assert.ok(Date.now() - started >= 250, `closed after ${Date.now() - started} ms, before the scrape`);
    assert.equal(value(await late, 'posttrain_train_step'), 5);

    // A short run that ended before its first scrape still waits for one.
    const unscraped = await startTrainMetricsServer(0, '127.0.0.1', {});
    unscraped.update(1, 1, {});
    const first = new Promise<string>((ok) => setTimeout(() => ok(scrape(unscraped.port)), 300));
    const t0 = Date.now();
    await unscraped.close(10_000);
    assert.ok(Date.now() - t0 >= 250, `closed after ${Date.now() - t0} ms, before the first scrape`);
    assert.equal(value(await first, 'posttrain_train_step'), 1);

    const read = await startTrainMetricsServer(0, '127.0.0.1', {});
    read.update(2, 2, {});
    assert.equal(value(await scrape(read.port), 'posttrain_train_step'), 2);
    const t2 = Date.now();
    await read.close(10_000);
    assert.ok(Date.now() - t2 < 1000, 'the last update was already read: no wait');

    const stalled = await startTrainMetricsServer(0, '127.0.0.1', {});
    await scrape(stalled.port);
    stalled.update(1, 1, {});
    const t1 = Date.now();
    await stalled.close(300);
    assert.ok(Date.now() - t1 < 2000, 'the wait is bounded');
  });
});
