import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { initBackend } from '@posttrain/backend';
import { HAS_DIGIT, rewardComponentsJson, rlRawConfig, startService, writePrompts, writeTinyPolicy, type ServiceProcess } from '@posttrain/rl';
import { createLogger } from '@posttrain/telemetry';

// A real Prometheus (Debian's package: /usr/bin/prometheus; .ci/run installs
// it) scrapes the sampler, the reference, the reward service and a
// `posttrain grpo --metrics-port` run every second on loopback; the test then
// asks Prometheus's HTTP API that every metric the README lists is there and
// moved during the run. A missing binary fails the test unless
// POSTTRAIN_SKIP_PROMETHEUS=1.

const PROMETHEUS = '/usr/bin/prometheus';
const SKIP = process.env.POSTTRAIN_SKIP_PROMETHEUS === '1';
const root = join(__dirname, '..', '..');
const STEPS = 8;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', () => ok()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

/** Starts a process, keeping the last lines of its output for error messages. */
function spawnLogged(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; tail: string[]; exited: Promise<number | null> } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const tail: string[] = [];
  for (const stream of [child.stdout!, child.stderr!])
    createInterface({ input: stream }).on('line', (l) => {
      tail.push(l);
      if (tail.length > 40) tail.shift();
    });
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  return { child, tail, exited };
}

async function stop(p: { child: ChildProcess; exited: Promise<number | null> } | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const killer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
  await p.exited;
  clearTimeout(killer);
}

describe('a real Prometheus scrapes the services and a GRPO run', { timeout: 600_000, skip: SKIP ? 'POSTTRAIN_SKIP_PROMETHEUS=1' : false }, () => {
  const services: ServiceProcess[] = [];
  let prometheus: ReturnType<typeof spawnLogged> | undefined;
  let trainer: ReturnType<typeof spawnLogged> | undefined;
  let dir = '';
  let model = '';
  let prompts = '';
  let api = '';

  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(api + path);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    assert.equal(body.status, 'success', `${path}: ${body.error}`);
    return body.data;
  };
  /** The value of a PromQL expression that yields one sample (at `time`, seconds, if given), or undefined when it yields none. */
  const query = async (expr: string, time?: number): Promise<number | undefined> => {
    const data = await get<{ result: { value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}${time === undefined ? '' : `&time=${time}`}`);
    assert.ok(data.result.length <= 1, `${expr}: ${data.result.length} series, expected one`);
    return data.result.length ? Number(data.result[0].value[1]) : undefined;
  };
  const waitFor = async (what: string, ok: () => Promise<boolean>, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s; Prometheus said:\n${prometheus?.tail.join('\n')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  before(async () => {
    if (!existsSync(PROMETHEUS)) return; // the test fails, saying so
    await initBackend({ logger: createLogger({ service: 'test', level: 'warn' }) });
    dir = await mkdtemp(join(tmpdir(), 'posttrain-prometheus-'));
    model = await writeTinyPolicy(11);
    const metrics = ['--metrics-port', '0'];
    services.push(await startService('policy-sampler', ['--model', model, '--max-new-tokens', '8', ...metrics]));
    services.push(await startService('reference', ['--model', model, ...metrics]));
    services.push(await startService('reward', metrics));
  });
  after(async () => {
    await stop(trainer);
    await stop(prometheus);
    await Promise.all(services.map((s) => s.kill()));
    for (const d of [dir, model && dirname(model), prompts && dirname(prompts)]) if (d) await rm(d, { recursive: true, force: true });
  });

  test('every service metric and the trainer gauges reach Prometheus and move during the run', async (t) => {
    assert.ok(existsSync(PROMETHEUS), `${PROMETHEUS} is missing: install Debian's prometheus package (apt-get install prometheus, as .ci/run does) or set POSTTRAIN_SKIP_PROMETHEUS=1 to skip this test`);
    const started = Date.now();
    const [trainerPort, webPort] = [await freePort(), await freePort()];
    const jobs: Record<string, number> = { 'policy-sampler': services[0].metricsPort!, reference: services[1].metricsPort!, reward: services[2].metricsPort!, trainer: trainerPort };
    for (const [job, port] of Object.entries(jobs)) assert.ok(Number.isInteger(port) && port > 0, `${job}: no metrics port (${port})`);
    // The trainer's run lasts a few seconds, on a fast machine less than a second of steps: it is scraped
    // every 200 ms so that a scrape falls inside the run, not only after its last step.
    const interval = (job: string) => (job === 'trainer' ? `    scrape_interval: 200ms\n    scrape_timeout: 200ms\n` : '');
    const scrapes = Object.entries(jobs).map(([job, port]) => `  - job_name: ${job}\n${interval(job)}    static_configs:\n      - targets: ['127.0.0.1:${port}']\n`);
    const configFile = join(dir, 'prometheus.yml');
    await writeFile(configFile, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n${scrapes.join('')}`);
    prometheus = spawnLogged(PROMETHEUS, [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${webPort}`, '--log.level=warn']);
    void prometheus.exited.then((code) => prometheus && t.diagnostic(`prometheus exited (${code})`));
    api = `http://127.0.0.1:${webPort}`;
    await waitFor('Prometheus ready', async () => (await fetch(`${api}/-/ready`)).ok, 60_000);

    type Target = { labels: { job: string }; health: string; lastError: string };
    const targets = async () => (await get<{ activeTargets: Target[] }>('/api/v1/targets')).activeTargets;
    const servicesUp = async () => (await targets()).filter((x) => x.labels.job !== 'trainer' && x.health === 'up').length === 3;
    await waitFor('the three services scraped', servicesUp, 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    const before = Date.now() / 1000;

    // The baseline, before the run: counters and the weights version at `before`.
    const counters: Record<string, string> = {
      'Generate requests': 'sum(posttrain_rpc_requests_total{job="policy-sampler",method="Generate"})',
      'LoadWeights requests': 'sum(posttrain_rpc_requests_total{job="policy-sampler",method="LoadWeights"})',
      'sampler latency observations': 'sum(posttrain_rpc_duration_seconds_count{job="policy-sampler"})',
      'reference ComputeLogProbs requests': 'sum(posttrain_rpc_requests_total{job="reference",method="ComputeLogProbs"})',
      'reference latency observations': 'sum(posttrain_rpc_duration_seconds_count{job="reference"})',
      'reward Score requests': 'sum(posttrain_rpc_requests_total{job="reward",method="Score"})',
      'reward latency observations': 'sum(posttrain_rpc_duration_seconds_count{job="reward"})',
      'generated tokens': 'posttrain_sampler_generated_tokens_total{job="policy-sampler"}',
      'batch size observations': 'posttrain_sampler_batch_size_count{job="policy-sampler"}',
      'completions': 'sum(posttrain_sampler_completions_total{job="policy-sampler"})',
      'weights version': 'posttrain_sampler_weights_version{job="policy-sampler"}',
    };
    const baseline: Record<string, number> = {};
    for (const [name, expr] of Object.entries(counters)) baseline[name] = (await query(expr, before)) ?? 0;

    // The run: `posttrain grpo` against the running services, its gauges on the trainer port.
    prompts = await writePrompts(8);
    const section = { services: { sampler_addresses: [services[0].address], reference_address: services[1].address, reward_address: services[2].address }, reward_components: rewardComponentsJson(HAS_DIGIT), prompts_per_step: 2, num_generations: 2, mini_batch_size: 4, max_completion_length: 6, beta: 0.04 };
    const config = rlRawConfig({ runId: 'grpo-scraped', outputDir: join(dir, 'runs'), model, prompts, maxSteps: STEPS, learningRate: 1e-3 }, 'grpo', section);
    const configPath = join(dir, 'grpo.json');
    await writeFile(configPath, JSON.stringify(config));
    const runStarted = Date.now();
    trainer = spawnLogged(process.execPath, [join(root, 'bin', 'posttrain.js'), 'grpo', '--config', configPath, '--metrics-port', String(trainerPort), '--no-progress', '--json', '--metrics-linger-s', '10'], { ...process.env, POSTTRAIN_LOG_LEVEL: 'warn' });
    const timeout = setTimeout(() => trainer!.child.kill('SIGKILL'), 300_000);
    const code = await trainer.exited;
    clearTimeout(timeout);
    const runSeconds = (Date.now() - runStarted) / 1000;
    assert.equal(code, 0, `posttrain grpo exited ${code}:\n${trainer.tail.join('\n')}`);
    const result = JSON.parse(trainer.tail.filter((l) => l.startsWith('{"runId"')).pop() ?? '{}') as { status?: string; step?: number; weightsVersion?: number };
    assert.equal(result.status, 'completed', trainer.tail.join('\n'));
    assert.equal(result.step, STEPS);

    // Two more scrapes of the services after the run.
    await new Promise((r) => setTimeout(r, 2500));
    const window = `[${Math.ceil(Date.now() / 1000 - before) + 5}s]`;

    const listed = await targets();
    assert.deepEqual(listed.map((x) => x.labels.job).sort(), Object.keys(jobs).sort(), 'every job is a target');
    for (const x of listed.filter((x) => x.labels.job !== 'trainer')) assert.equal(x.health, 'up', `${x.labels.job}: ${x.lastError}`);
    assert.equal(await query(`max_over_time(up{job="trainer"}${window})`), 1, 'the trainer was scraped during the run');

    const moved: string[] = [];
    for (const [name, expr] of Object.entries(counters)) {
      const now = await query(expr);
      assert.ok(now !== undefined, `${name}: ${expr} has no value after the run`);
      assert.ok(now > baseline[name], `${name}: ${expr} was ${baseline[name]} before the run and is ${now} after; expected it to rise`);
      moved.push(`${name} ${baseline[name]} -> ${now}`);
    }
    assert.ok((await query(`posttrain_sampler_weights_version{job="policy-sampler"}`))! >= baseline['weights version'] + STEPS, 'one weights version per step');
    const tokensPerSecond = await query(`max_over_time(rate(posttrain_sampler_generated_tokens_total{job="policy-sampler"}[3s])${window.slice(0, -1)}:1s])`);
    assert.ok(tokensPerSecond !== undefined && tokensPerSecond > 0, `tokens/s (rate of the generated tokens counter) never rose above 0: ${tokensPerSecond}`);
    for (const expr of ['posttrain_sampler_queue_depth{job="policy-sampler"}', 'posttrain_sampler_running_sequences{job="policy-sampler"}']) assert.ok((await query(expr))! >= 0, `${expr} is missing`);
    for (const job of ['policy-sampler', 'reference', 'reward']) {
      assert.ok((await query(`count(posttrain_rpc_duration_seconds_bucket{job="${job}"})`))! > 1, `${job}: no latency histogram buckets`);
    }
    assert.ok((await query('count(posttrain_sampler_batch_size_bucket{job="policy-sampler"})'))! > 1, 'no batch size histogram buckets');

    // The trainer's gauges: the step went from below the last step to the last step; the rest were set.
    assert.equal(await query(`max_over_time(posttrain_train_step{job="trainer"}${window})`), STEPS, 'the step gauge reached the last step');
    assert.ok((await query(`min_over_time(posttrain_train_step{job="trainer"}${window})`))! < STEPS, 'the step gauge was scraped before the last step');
    assert.equal(await query(`max_over_time(posttrain_train_total_steps{job="trainer"}${window})`), STEPS);
    assert.ok((await query(`max_over_time(posttrain_train_push_seconds{job="trainer"}${window})`))! > 0, 'push seconds were set');
    const trainerGauges: string[] = [];
    for (const name of ['posttrain_train_loss', 'posttrain_train_reward', 'posttrain_train_kl']) {
      const changes = await query(`changes(${name}{job="trainer"}${window})`);
      const last = await query(`last_over_time(${name}{job="trainer"}${window})`);
      assert.ok(changes !== undefined && last !== undefined && Number.isFinite(last), `${name}: not scraped from the trainer (${changes}, ${last})`);
      assert.ok(changes >= 1 || last !== 0, `${name}: never set from a step's metrics`);
      trainerGauges.push(`${name} ${last} (${changes} changes)`);
    }
    assert.equal(await query(`count(last_over_time(posttrain_train_step{job="trainer",run_id="grpo-scraped",service="posttrain-grpo"}${window}))`), 1, 'labelled with the run id and the stage');
    t.diagnostic(`run ${runSeconds.toFixed(1)} s, whole test ${((Date.now() - started) / 1000).toFixed(1)} s; ${moved.join('; ')}; tokens/s peak ${tokensPerSecond.toFixed(1)}; ${trainerGauges.join('; ')}`);
  });
});
