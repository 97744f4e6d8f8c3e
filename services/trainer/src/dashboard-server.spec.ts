import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunSpec, type GenerationSamples } from '@posttrain/proto';
import { createLogger } from '@posttrain/telemetry';
import { startDashboardServer, sseFrame, type DashboardServer } from '@posttrain/dashboard';
import { RunRegistry, type RunExecutor } from './run-registry';

const HOSTILE = '<script>alert("x")</script>&';

/** A run that reports `steps` steps through the registry's callbacks, each after `gate` resolves. */
function steppingExecutor(steps: number, gate: () => Promise<void>): RunExecutor {
  return {
    stage: 'sft',
    outputDir: '/tmp',
    execute: async ({ callbacks }) => {
      for (let s = 1; s <= steps; s++) {
        await gate();
        callbacks.onStep?.({ step: s, totalSteps: steps, metrics: { 'train/loss': 3 / s, 'train/learning_rate': 1e-3 }, skipped: false, samples: [{ prompt: HOSTILE, completion: `answer ${s}`, reward: s / 2 }] });
      }
      return { status: 'completed', runDir: '/tmp', lastMetrics: { 'train/loss': 3 / steps } };
    },
  };
}

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(url: string, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens /events and collects parsed frames until `until` is satisfied; returns them and a way to close. */
function openStream(url: string): Promise<{ status: number; frames: { event: string; data: unknown }[]; raw: () => string; waitFor: (pred: (f: { event: string; data: unknown }[]) => boolean) => Promise<void>; close: () => void; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}events`, (res) => {
      let raw = '';
      const frames: { event: string; data: unknown }[] = [];
      const waiters: (() => void)[] = [];
      let endResolve: () => void = () => undefined;
      const ended = new Promise<void>((r) => (endResolve = r));
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        raw += c;
        const blocks = raw.split('\n\n');
        frames.length = 0;
        for (const b of blocks.slice(0, -1)) {
          const ev = /^event: (.*)$/m.exec(b);
          const data = /^data: (.*)$/m.exec(b);
          if (ev && data) frames.push({ event: ev[1], data: JSON.parse(data[1]) });
        }
        for (const w of [...waiters]) w();
      });
      res.on('end', () => endResolve());
      res.on('close', () => endResolve());
      resolve({
        status: res.statusCode!,
        frames,
        raw: () => raw,
        ended,
        waitFor: (pred) =>
          new Promise<void>((ok, fail) => {
            const timer = setTimeout(() => fail(new Error(`timed out; frames: ${raw.slice(-2000)}`)), 10_000);
            const check = () => {
              if (pred(frames)) {
                clearTimeout(timer);
                waiters.splice(waiters.indexOf(check), 1);
                ok();
              }
            };
            waiters.push(check);
            check();
          }),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('trainer dashboard HTTP handlers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'posttrain-dashboard-'));
  const registry = new RunRegistry(join(dir, 'runs'), createLogger({ service: 'trainer', level: 'silent' }));
  let dash: DashboardServer;
  let releaseStep: () => void = () => undefined;
  const gate = () => new Promise<void>((r) => (releaseStep = r));

  before(async () => {
    dash = await startDashboardServer(registry, '127.0.0.1', 0, { maxClients: 2, heartbeatMs: 60_000, services: () => [{ role: 'reward', address: '127.0.0.1:9', health: 'SERVING', checkedAt: 'now' }] });
  });
  after(async () => {
    await dash.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('sseFrame is one event line, one data line of JSON and a blank line; bad event names are refused', () => {
    assert.equal(sseFrame('metrics', { a: 'x\ny' }), 'event: metrics\ndata: {"a":"x\\ny"}\n\n');
    assert.throws(() => sseFrame('bad\nname', {}), /SSE event name "bad\nname": expected lowercase letters and dashes/);
  });

  test('a run started in the registry is listed, its steps stream as metrics events, and its end as a run event', async () => {
    const stream = await openStream(dash.url);
    assert.equal(stream.status, 200);
    await stream.waitFor((f) => f.some((x) => x.event === 'runs'));
    assert.deepEqual(stream.frames.map((f) => f.event), ['reset', 'runs', 'services']);
    registry.start('run-a', RunSpec.fromPartial({ name: HOSTILE, stage: { $case: 'sft', value: {} } as RunSpec['stage'] }), steppingExecutor(3, gate));
    for (let s = 1; s <= 3; s++) {
      await new Promise((r) => setTimeout(r, 20));
      releaseStep();
      await stream.waitFor((f) => f.filter((x) => x.event === 'metrics').length === s);
    }
    await stream.waitFor((f) => f.some((x) => x.event === 'run' && (x.data as { state: string }).state === 'SUCCEEDED'));
    const metrics = stream.frames.filter((f) => f.event === 'metrics').map((f) => f.data as { runId: string; step: number; split: string; values: Record<string, number> });
    assert.deepEqual(metrics.map((m) => [m.runId, m.step, m.split, m.values['train/loss']]), [['run-a', 1, 'train', 3], ['run-a', 2, 'train', 1.5], ['run-a', 3, 'train', 1]]);
    // Each step's samples follow its metrics, as one samples event.
    const samples = stream.frames.filter((f) => f.event === 'samples').map((f) => f.data as { runId: string; step: number; time: string; samples: { prompt: string; completion: string; reward: number }[] });
    assert.deepEqual(samples.map((g) => [g.runId, g.step, g.samples]), [1, 2, 3].map((s) => ['run-a', s, [{ prompt: HOSTILE, completion: `answer ${s}`, reward: s / 2 }]]));
    assert.ok(samples.every((g) => !Number.isNaN(Date.parse(g.time))), 'samples carry their time');
    assert.deepEqual(registry.events('run-a', 0).map((e) => e.event?.$case).filter((c) => c === 'metrics' || c === 'samples'), ['metrics', 'samples', 'metrics', 'samples', 'metrics', 'samples']);
    const states = stream.frames.filter((f) => f.event === 'run').map((f) => (f.data as { state: string }).state);
    assert.deepEqual(states, ['PENDING', 'RUNNING', 'SUCCEEDED', 'SUCCEEDED'], 'one run event per state change, and one for finished');
    stream.close();

    const runs = await get(`${dash.url}api/runs`);
    assert.equal(runs.status, 200);
    assert.match(String(runs.headers['content-type']), /^application\/json/);
    const listed = (JSON.parse(runs.body) as { runs: { id: string; name: string; state: string; lastStep: number; totalSteps: number; stage: string }[] }).runs;
    assert.deepEqual(listed.map((r) => [r.id, r.name, r.state, r.lastStep, r.totalSteps, r.stage]), [['run-a', HOSTILE, 'SUCCEEDED', 3, 3, 'sft']]);

    // A new stream replays the history: the run, its three steps and its newest two samples events.
    const late = await openStream(dash.url);
    await late.waitFor((f) => f.filter((x) => x.event === 'metrics').length === 3 && f.filter((x) => x.event === 'samples').length === 2);
    assert.deepEqual((late.frames.find((f) => f.event === 'runs')!.data as { id: string }[]).map((r) => r.id), ['run-a']);
    assert.deepEqual(late.frames.filter((f) => f.event === 'samples').map((f) => (f.data as { step: number }).step), [2, 3]);
    late.close();

    // The samples are in the run's history on disk: a restarted trainer has them.
    const reloaded = new RunRegistry(join(dir, 'runs'), createLogger({ service: 'trainer', level: 'silent' }));
    const kept = reloaded.events('run-a', 0).filter((e) => e.event?.$case === 'samples').map((e) => (e.event as { value: GenerationSamples }).value);
    assert.deepEqual(kept.map((g) => [g.step, g.samples[0].completion, g.samples[0].reward]), [[1, 'answer 1', 0.5], [2, 'answer 2', 1], [3, 'answer 3', 1.5]]);
  });

  test('the page escapes run names and ids and inlines uPlot; its CSP allows only its own scripts', async () => {
    const page = await get(dash.url);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.ok(page.body.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;'), 'the hostile name is escaped');
    assert.ok(!page.body.includes(HOSTILE), 'the raw name never appears');
    assert.doesNotMatch(page.body, /<script[^>]+src=/, 'no external scripts');
    assert.match(page.body, /uPlot/);
    assert.match(page.body, /<table id="samples"[^>]*><thead><tr><th>run<\/th><th>step<\/th><th>prompt<\/th><th>completion<\/th><th>reward<\/th>/, 'the recent samples table');
    assert.doesNotMatch(page.body, /innerHTML/, 'text goes in with textContent');
    assert.match(String(page.headers['content-security-policy']), /^default-src 'none'; script-src 'sha256-[^']+' 'sha256-[^']+';/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
  });

  test('unknown paths are 404, writes are 405, and /api/services lists the services', async () => {
    const missing = await get(`${dash.url}api/runs/../../etc/passwd`);
    assert.equal(missing.status, 404);
    assert.match(missing.body, /^not found; the dashboard serves \/, \/api\/runs, \/api\/services and \/events/);
    assert.equal((await get(`${dash.url}nope`)).status, 404);
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await get(`${dash.url}api/runs`, method);
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD');
    }
    const services = JSON.parse((await get(`${dash.url}api/services`)).body) as { services: { role: string; health: string }[] };
    assert.deepEqual(services.services.map((s) => [s.role, s.health]), [['reward', 'SERVING']]);
  });

  test('event streams are bounded: one past maxClients is 503, and a closed one frees its slot', async () => {
    const a = await openStream(dash.url);
    const b = await openStream(dash.url);
    await a.waitFor((f) => f.some((x) => x.event === 'runs'));
    await b.waitFor((f) => f.some((x) => x.event === 'runs'));
    assert.equal(dash.handler.clientCount, 2);
    const refused = await get(`${dash.url}events`);
    assert.equal(refused.status, 503);
    assert.match(refused.body, /^too many dashboard clients: 2 streams open, at most 2 \(--dashboard-max-clients\)/);
    a.close();
    for (let i = 0; i < 100 && dash.handler.clientCount > 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(dash.handler.clientCount, 1);
    const c = await openStream(dash.url);
    assert.equal(c.status, 200);
    await c.waitFor((f) => f.some((x) => x.event === 'runs'));
    // Closing the dashboard ends the open streams.
    const other = await startDashboardServer(registry, '127.0.0.1', 0, { maxClients: 1 });
    const d = await openStream(other.url);
    await d.waitFor((f) => f.some((x) => x.event === 'runs'));
    await other.close();
    await d.ended;
    assert.equal(other.handler.clientCount, 0);
    b.close();
    c.close();
  });

  test('a port in use is an error naming the host and port', async () => {
    await assert.rejects(startDashboardServer(registry, '127.0.0.1', dash.port, { maxClients: 1 }), new RegExp(`^Error: cannot listen on 127\\.0\\.0\\.1:${dash.port} \\(dashboard port\\): .*EADDRINUSE`));
  });
});
