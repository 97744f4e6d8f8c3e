import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { PolicySamplerService, ReferenceModelService, RewardScorerService, TrainerService } from '@posttrain/proto';
import { checkHealth, createClient, listServices, status } from '@posttrain/rpc';

// `posttrain up` as a user runs it: four services, each its own process, real gRPC on loopback.
const root = join(__dirname, '..', '..');

describe('posttrain up', { timeout: 180_000 }, () => {
  let up: ChildProcess;
  let services: Record<string, string[]> = {};
  let processes: { label: string; address: string; pid: number }[] = [];
  let dashboard = '';
  const stderr: string[] = [];

  before(async () => {
    up = spawn(process.execPath, [join(root, 'bin', 'posttrain.js'), 'up', '--json', '--samplers', '2', '--max-restarts', '1', '--restart-backoff-ms', '200'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, POSTTRAIN_LOG_LEVEL: 'warn', POSTTRAIN_RUNS_DIR: mkdtempSync(join(tmpdir(), 'posttrain-up-runs-')) } });
    createInterface({ input: up.stderr! }).on('line', (l) => stderr.push(l));
    services = await new Promise((resolve, reject) => {
      createInterface({ input: up.stdout! }).on('line', (line) => {
        const parsed = JSON.parse(line) as { services: Record<string, string[]>; processes: typeof processes; dashboard: string };
        processes = parsed.processes;
        dashboard = parsed.dashboard;
        resolve(parsed.services);
      });
      up.once('exit', (code) => reject(new Error(`posttrain up exited with ${code}: ${stderr.join('\n')}`)));
    });
  });

  after(async () => {
    if (up.exitCode === null) {
      up.kill('SIGTERM');
      await new Promise((r) => up.once('exit', r));
    }
  });

  test('starts every service, two sampler replicas included', () => {
    assert.equal(services['policy-sampler'].length, 2);
    for (const name of ['reference', 'reward', 'trainer']) assert.equal(services[name]?.length, 1, name);
  });

  test("prints the trainer's dashboard, which lists the other services' health", async () => {
    assert.match(dashboard, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.deepEqual(await (await fetch(`${dashboard}api/runs`)).json(), { runs: [] });
    const expected = [...services['policy-sampler'], ...services.reference, ...services.reward].sort();
    let listed: { address: string; health: string }[] = [];
    for (let i = 0; i < 100 && !(listed.length === expected.length && listed.every((s) => s.health === 'SERVING')); i++) {
      listed = ((await (await fetch(`${dashboard}api/services`)).json()) as { services: typeof listed }).services;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(listed.map((s) => s.address).sort(), expected);
    assert.ok(listed.every((s) => s.health === 'SERVING'), JSON.stringify(listed));
  });

  test('each answers SERVING on grpc.health.v1 and lists its service through reflection', async () => {
    const expected: Record<string, string> = { 'policy-sampler': 'posttrain.v1.PolicySampler', reference: 'posttrain.v1.ReferenceModel', reward: 'posttrain.v1.RewardScorer', trainer: 'posttrain.v1.Trainer' };
    for (const [name, addrs] of Object.entries(services)) {
      for (const addr of addrs) {
        assert.equal(await checkHealth(addr), 'SERVING', `${name} at ${addr}`);
        assert.equal(await checkHealth(addr, expected[name]), 'SERVING', `${name} at ${addr}`);
        const listed = await listServices(addr);
        assert.ok(listed.includes(expected[name]), `${name}: ${listed.join(', ')}`);
        assert.ok(listed.includes('grpc.health.v1.Health'), `${name}: ${listed.join(', ')}`);
      }
    }
  });

  test('malformed requests get INVALID_ARGUMENT naming the field, and the services keep serving', async () => {
    const isInvalid = (field: RegExp) => (e: ServiceError) => e.code === status.INVALID_ARGUMENT && field.test(e.details);
    const sampler = createClient(PolicySamplerService, services['policy-sampler']);
    await assert.rejects(sampler.unary('computeLogProbs', { sequences: [{ promptIds: [1], completionIds: [-3] }], returnEntropies: false }), isInvalid(/^sequences\[0\]\.completion_ids\[0\]: got -3/));
    const gen = sampler.serverStream('generate', { prompts: [{ input: { $case: 'text', value: 'hi' } }], n: 1, requestId: '', sampling: { topP: 1.5, topK: 0, stop: [], stopTokenIds: [], logprobs: false } });
    await assert.rejects(
      (async () => {
        for await (const _ of gen) assert.fail('no completion expected');
      })(),
      isInvalid(/^sampling\.top_p: got 1\.5, expected a value in \(0, 1\]/),
    );
    const reference = createClient(ReferenceModelService, services.reference);
    await assert.rejects(reference.unary('computeLogProbs', { sequences: [], returnEntropies: false }), isInvalid(/^sequences: empty/));
    const reward = createClient(RewardScorerService, services.reward);
    await assert.rejects(reward.unary('score', { items: [{ id: 'a', prompt: 'p', promptMessages: [], completion: 'c', completionTokenIds: [] }], components: [{ name: 'x', weight: 1 }] }), isInvalid(/^components\[0\]\.rule: /));
    const trainer = createClient(TrainerService, services.trainer);
    await assert.rejects(trainer.unary('getRun', { runId: 'Bad Id!' }), isInvalid(/^run_id: got "Bad Id!"/));
    assert.deepEqual(await trainer.unary('listRuns', { pageSize: 0, pageToken: '' }), { runs: [], nextPageToken: '' });
    for (const addrs of Object.values(services)) for (const a of addrs) assert.equal(await checkHealth(a), 'SERVING');
    for (const c of [sampler, reference, reward, trainer]) c.close();
  });

  test('a sampler replica that dies is restarted on its port while the others keep serving; past --max-restarts it stays down', async () => {
    const waitFor = async (re: RegExp, timeoutMs: number) => {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        const line = stderr.find((l) => re.test(l));
        if (line) return line;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`no stderr line matched ${re} within ${timeoutMs} ms:\n${stderr.join('\n')}`);
    };
    const victim = processes.find((p) => p.label === 'policy-sampler-2')!;
    const others = Object.values(services).flat().filter((a) => a !== victim.address);
    process.kill(victim.pid, 'SIGKILL');
    await waitFor(/^posttrain up: policy-sampler-2 exited unexpectedly \(SIGKILL\)$/, 10_000);
    await waitFor(new RegExp(`^posttrain up: restarting policy-sampler-2 on ${victim.address.replace(/\./g, '\\.')} in 0\\.2 s \\(restart 1 of 1\\)$`), 10_000);
    for (const a of others) assert.equal(await checkHealth(a), 'SERVING', `${a} while the sampler restarts`);
    const back = await waitFor(/^posttrain up: policy-sampler-2 is back on /, 120_000);
    const pid = Number(/\(pid (\d+)\)$/.exec(back)![1]);
    assert.notEqual(pid, victim.pid);
    assert.ok(back.includes(victim.address), back);
    assert.equal(await checkHealth(victim.address), 'SERVING', 'the restarted replica answers on its old address');
    process.kill(pid, 'SIGKILL');
    await waitFor(/^posttrain up: policy-sampler-2 died after 1 restart\(s\); leaving it down, the other services keep running$/, 10_000);
    assert.equal(up.exitCode, null, 'posttrain up is still running');
    for (const a of others) assert.equal(await checkHealth(a), 'SERVING', `${a} after the replica was given up`);
  });

  test('SIGTERM stops every service and exits 0', async () => {
    up.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => up.once('exit', r));
    assert.equal(code, 0, stderr.join('\n'));
    const addr = services.trainer[0];
    await assert.rejects(checkHealth(addr, '', 500));
  });
});
