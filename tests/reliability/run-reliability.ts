/**
 * `npm run reliability`: a bounded reliability suite on loopback. It starts
 * the four services (three sampler replicas, a tiny model), sends every RPC
 * malformed and edge-case requests (fixed cases and seeded random bytes),
 * puts bounded concurrent load on a sampler and the reward service
 * (load.ts), then injects faults into short GRPO runs (SIGSTOP and SIGKILL of
 * a sampler, SIGKILL and restart of the reward and reference services) and
 * SIGKILLs the Trainer mid-run and resumes the run (trainer-kill.ts), and
 * prints one table: scenario, expected status, observed, pass. It ends with
 * the counts (cases, crashes, statuses by code, faults survived, runs and
 * rollouts lost) and exits 1 if any row failed.
 *
 * Bounded: about 210 requests plus 15 s of load per service (128-256 callers), 4 short GRPO runs (the longest stopped 5 steps after a 30 s freeze) and 2 short SFT runs, every call with a
 * deadline; nothing leaves 127.0.0.1. `--quick` (CI) keeps the requests,
 * 4 s of load per service and three of the faults.
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@posttrain/backend';
import { ExtractionMode, PolicySamplerService, ReferenceModelService, RewardScorerService, RunSpec, TrainerService, WatchRunRequest, WeightsFormat } from '@posttrain/proto';
import type { RewardComponent } from '@posttrain/proto';
import { HAS_DIGIT, resolveRlRunConfig, rewardComponentsJson, rlConfig, runRl, startService, writePrompts, writeTinyPolicy } from '@posttrain/rl';
import type { ServiceProcess } from '@posttrain/rl';
import { checkHealth, createClient } from '@posttrain/rpc';
import type { AnyServiceDefinition } from '@posttrain/rpc';
import { createLogger } from '@posttrain/telemetry';
import { loadServices } from './load';
import { byCode, count, outcome, rows } from './tally';
import { killTrainerAndResume, startTrainer, type TrainerRoots } from './trainer-kill';

const quick = process.argv.includes('--quick');
const MAX_UPLOAD = 6 * 1024 ** 3;
const quiet = createLogger({ service: 'reliability', level: 'error' });

async function expectStatus(scenario: string, expected: string[], call: () => Promise<unknown>): Promise<void> {
  const observed = await outcome(call());
  count(observed);
  rows.push({ scenario, expected: expected.join('|'), observed, pass: expected.includes(observed) });
}

/** Drains a server stream (Generate, WatchRun) to its end or first error. */
async function drain(stream: AsyncIterable<unknown>, max = 1_000): Promise<void> {
  let n = 0;
  for await (const _ of stream) if (++n >= max) return;
}

/** The same service with bytes in, bytes out: for undecodable and random requests. */
function rawDefinition(def: AnyServiceDefinition): AnyServiceDefinition {
  return Object.fromEntries(Object.entries(def).map(([k, m]) => [k, { ...m, requestSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b }])) as AnyServiceDefinition;
}

/** A varint field (wire type 0): tag, then the value, for hand-made messages with a 64-bit integer >= 2^53. */
function varintField(field: number, value: bigint): Buffer {
  const out: number[] = [];
  for (let v = BigInt((field << 3) | 0); ; v >>= 7n) {
    if (v < 0x80n) {
      out.push(Number(v));
      break;
    }
    out.push(Number((v & 0x7fn) | 0x80n));
  }
  for (let v = value; ; v >>= 7n) {
    if (v < 0x80n) {
      out.push(Number(v));
      break;
    }
    out.push(Number((v & 0x7fn) | 0x80n));
  }
  return Buffer.from(out);
}

/** Seeded random bytes (xorshift32). */
function randomBytes(seed: number, length: number): Buffer {
  let x = seed >>> 0 || 1;
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<number> {
  const began = Date.now();
  await initBackend({ logger: quiet });
  const work = mkdtempSync(join(tmpdir(), 'posttrain-reliability-'));
  const model = await writeTinyPolicy(4);
  const prompts = await writePrompts(64);
  const runsDir = join(work, 'runs');
  const dataRoot = join(work, 'data');
  mkdirSync(dataRoot, { recursive: true });
  writeFileSync(join(dataRoot, 'ok.jsonl'), '{"prompt":"1+1=","ground_truth":"2"}\n');
  const samplerArgs = ['--model', model, '--max-new-tokens', '16', '--max-upload-bytes', String(MAX_UPLOAD)];
  // A third replica with a small queue bound takes the load, so RESOURCE_EXHAUSTED is exercised and the GRPO runs' replicas stay as they are.
  const [loadSampler, ...samplers]: ServiceProcess[] = await Promise.all([startService('policy-sampler', [...samplerArgs, '--max-queue-depth', '16', '--max-batch-sequences', '16']), startService('policy-sampler', samplerArgs), startService('policy-sampler', samplerArgs)]);
  let reference = await startService('reference', ['--model', model]);
  let reward = await startService('reward', []);
  const roots: TrainerRoots = { runsDir, modelsRoot: join(work, 'models'), dataRoot };
  const trainerGroup = await startTrainer(roots);
  let restartedTrainer: Awaited<ReturnType<typeof startTrainer>> | null = null;
  const trainerAddress = trainerGroup.services[0].address;
  const opts = { maxAttempts: 1, deadlineMs: 20_000 };
  let faultsInjected = 0;
  let faultsSurvived = 0;
  let rolloutsLost = 0;
  let runsLost = 0;
  try {
    // --- malformed and edge-case requests, every RPC ---
    const sampler = createClient(PolicySamplerService, [samplers[0].address], opts);
    const ref = createClient(ReferenceModelService, [reference.address], opts);
    const rew = createClient(RewardScorerService, [reward.address], opts);
    const trainer = createClient(TrainerService, [trainerAddress], opts);
    const IA = ['INVALID_ARGUMENT'];
    const sampling = { topK: 0, stop: [], stopTokenIds: [], logprobs: true };
    const tokens = (ids: number[]) => ({ input: { $case: 'tokenIds' as const, value: { ids } } });
    const gen = (req: Parameters<typeof sampler.serverStream<'generate'>>[1]) => () => drain(sampler.serverStream('generate', req));
    await expectStatus('Generate: a valid request', ['OK'], gen({ prompts: [tokens([5, 6])], n: 2, requestId: 'ok', sampling: { ...sampling, maxNewTokens: 4 } }));
    await expectStatus('Generate: no prompts', IA, gen({ prompts: [], n: 1, requestId: '', sampling }));
    await expectStatus('Generate: token id -5', IA, gen({ prompts: [tokens([-5])], n: 1, requestId: '', sampling }));
    await expectStatus('Generate: token id 10^6 (outside the vocabulary)', IA, gen({ prompts: [tokens([1_000_000])], n: 1, requestId: '', sampling }));
    await expectStatus('Generate: temperature NaN', IA, gen({ prompts: [tokens([5])], n: 1, requestId: '', sampling: { ...sampling, temperature: Number.NaN } }));
    await expectStatus('Generate: temperature 1e-45', IA, gen({ prompts: [tokens([5])], n: 1, requestId: '', sampling: { ...sampling, temperature: 1e-45 } }));
    await expectStatus('Generate: top_p 1.5', IA, gen({ prompts: [tokens([5])], n: 1, requestId: '', sampling: { ...sampling, topP: 1.5 } }));
    await expectStatus('Generate: n = 10^6', IA, gen({ prompts: [tokens([5])], n: 1_000_000, requestId: '', sampling }));
    await expectStatus('Generate: a 2 MiB text prompt', IA, gen({ prompts: [{ input: { $case: 'text', value: 'x'.repeat(2 * 1024 * 1024) } }], n: 1, requestId: '', sampling }));
    const lp = (client: typeof sampler | typeof ref, req: Parameters<typeof ref.unary<'computeLogProbs'>>[1]) => () => client.unary('computeLogProbs', req);
    for (const [name, client] of [['sampler', sampler], ['reference', ref]] as const) {
      await expectStatus(`${name} ComputeLogProbs: a valid request`, ['OK'], lp(client, { sequences: [{ promptIds: [5, 6], completionIds: [7, 8] }], returnEntropies: true }));
      await expectStatus(`${name} ComputeLogProbs: no sequences`, IA, lp(client, { sequences: [], returnEntropies: false }));
      await expectStatus(`${name} ComputeLogProbs: completion id -3`, IA, lp(client, { sequences: [{ promptIds: [5], completionIds: [-3] }], returnEntropies: false }));
      await expectStatus(`${name} ComputeLogProbs: temperature Infinity`, IA, lp(client, { sequences: [{ promptIds: [5], completionIds: [6] }], temperature: Number.POSITIVE_INFINITY, returnEntropies: false }));
      await expectStatus(`${name} ComputeLogProbs: temperature 1e-45`, IA, lp(client, { sequences: [{ promptIds: [5], completionIds: [6] }], temperature: 1e-45, returnEntropies: false }));
      await expectStatus(`${name} GetInfo`, ['OK'], () => client.unary('getInfo', {}));
    }
    const header = (over: object) => ({ chunk: { $case: 'header' as const, value: { version: 9, format: WeightsFormat.SAFETENSORS_FULL, totalBytes: 3, sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', adapterConfigJson: '', manifest: [], ...over } } });
    const data = { chunk: { $case: 'data' as const, value: { offset: 0, data: Buffer.from('abc') } } };
    await expectStatus('LoadWeights: data before the header', IA, () => sampler.clientStream('loadWeights', [data]));
    await expectStatus('LoadWeights: an empty stream', IA, () => sampler.clientStream('loadWeights', []));
    // Over 4 GiB is accepted for the header (large uploads go to a file under --upload-dir, free space checked first);
    // this stream then ends without its data. Over --max-upload-bytes is refused before anything is allocated.
    await expectStatus('LoadWeights: total_bytes 5 GiB, no data (bound 6 GiB; file or disk check)', ['INVALID_ARGUMENT', 'RESOURCE_EXHAUSTED'], () => sampler.clientStream('loadWeights', [header({ totalBytes: 5 * 1024 ** 3 })]));
    await expectStatus('LoadWeights: total_bytes over --max-upload-bytes 6 GiB', IA, () => sampler.clientStream('loadWeights', [header({ totalBytes: MAX_UPLOAD + 1 })]));
    await expectStatus('LoadWeights: version 0', IA, () => sampler.clientStream('loadWeights', [header({ version: 0 }), data]));
    await expectStatus('LoadWeights: sha256 not hex', IA, () => sampler.clientStream('loadWeights', [header({ sha256: 'zz' }), data]));
    await expectStatus('LoadWeights: 3 bytes that are not safetensors', IA, () => sampler.clientStream('loadWeights', [header({}), data]));

    const item = { id: 'i', prompt: 'p', promptMessages: [], completion: `${'a'.repeat(28)}b`, completionTokenIds: [] };
    const regex = (name: string, pattern: string): RewardComponent => ({ name, weight: 1, rule: { $case: 'regex', value: { pattern, flags: '', fullMatch: false, negate: false } } });
    await expectStatus('Score: a valid request', ['OK'], () => rew.unary('score', { items: [item], components: [HAS_DIGIT] }));
    await expectStatus('Score: no items', IA, () => rew.unary('score', { items: [], components: [HAS_DIGIT] }));
    await expectStatus('Score: a 50 KB regex', IA, () => rew.unary('score', { items: [item], components: [regex('long', `(${'ab|'.repeat(17_000)}c)`)] }));
    await expectStatus('Score: nested repetition (a+)+', IA, () => rew.unary('score', { items: [item], components: [regex('evil', '^(a+)+$')] }));
    await expectStatus('Score: 40 components', IA, () => rew.unary('score', { items: [item], components: Array.from({ length: 40 }, (_, i) => regex(`c${i}`, 'a')) }));
    await expectStatus('Score: components past the time budget together', ['RESOURCE_EXHAUSTED', 'INVALID_ARGUMENT'], () => rew.unary('score', { items: [item], components: Array.from({ length: 8 }, (_, i) => regex(`slow${i}`, '^(a|a)*$')) }));
    await expectStatus('Score: weight NaN', IA, () => rew.unary('score', { items: [item], components: [{ ...HAS_DIGIT, weight: Number.NaN }] }));
    await expectStatus('Score: an unknown extraction mode (999)', IA, () => rew.unary('score', { items: [{ ...item, groundTruth: '1' }], components: [{ name: 'x', weight: 1, rule: { $case: 'exactMatch', value: { extraction: { mode: 999 as ExtractionMode, pattern: '' } } } }] }));
    await expectStatus('RewardScorer GetInfo', ['OK'], () => rew.unary('getInfo', {}));

    const grpoSpec = (over: Partial<RunSpec>) => RunSpec.fromPartial({ runId: 'fuzz', baseModelDir: join(work, 'models', 'none'), dataset: { paths: [join(dataRoot, 'ok.jsonl')] }, maxSteps: 1, optimizer: { learningRate: 1e-3 }, stage: { $case: 'grpo', value: { promptsPerStep: 1, groupSize: 2, updatesPerBatch: 1, minibatchSize: 2 } }, ...over });
    await expectStatus('StartRun: no spec', IA, () => trainer.unary('startRun', {}));
    await expectStatus('StartRun: dataset /etc/passwd', IA, () => trainer.unary('startRun', { spec: grpoSpec({ dataset: { paths: ['/etc/passwd'], evalPaths: [], evalFraction: 0, maxSamples: 0, format: 0 } as never }) }));
    await expectStatus('StartRun: dataset ../../etc/passwd', IA, () => trainer.unary('startRun', { spec: grpoSpec({ dataset: { paths: [join(dataRoot, '..', '..', '..', 'etc', 'passwd')], evalPaths: [], evalFraction: 0, maxSamples: 0, format: 0 } as never }) }));
    await expectStatus('StartRun: base_model_dir /', IA, () => trainer.unary('startRun', { spec: grpoSpec({ baseModelDir: '/' }) }));
    await expectStatus('StartRun: output_dir /tmp (outside the runs root)', IA, () => trainer.unary('startRun', { spec: grpoSpec({ outputDir: '/tmp' }) }));
    await expectStatus('StartRun: a 3 MB name', IA, () => trainer.unary('startRun', { spec: grpoSpec({ name: 'n'.repeat(3_000_000) }) }));
    await expectStatus('StartRun: run_id "../x"', IA, () => trainer.unary('startRun', { spec: grpoSpec({ runId: '../x' }) }));
    await expectStatus('StartRun: LR schedule 999', IA, () => trainer.unary('startRun', { spec: grpoSpec({ optimizer: { learningRate: 1e-3, schedule: 999 } as never }) }));
    await expectStatus('GetRun: an unknown run', ['NOT_FOUND'], () => trainer.unary('getRun', { runId: 'nope' }));
    await expectStatus('GetRun: run_id "Bad Id!"', IA, () => trainer.unary('getRun', { runId: 'Bad Id!' }));
    await expectStatus('ListRuns: page_size -1', IA, () => trainer.unary('listRuns', { pageSize: -1, pageToken: '' }));
    await expectStatus('ListRuns: a garbage page token', IA, () => trainer.unary('listRuns', { pageSize: 1, pageToken: '%%%' }));
    await expectStatus('CancelRun: an unknown run', ['NOT_FOUND'], () => trainer.unary('cancelRun', { runId: 'nope', reason: '' }));
    await expectStatus('WatchRun: an unknown run', ['NOT_FOUND'], () => drain(trainer.serverStream('watchRun', WatchRunRequest.fromPartial({ runId: 'nope' }))));

    // Undecodable bytes, 64-bit integers >= 2^53, and seeded random bytes to every RPC.
    const raw = {
      sampler: createClient(rawDefinition(PolicySamplerService), [samplers[0].address], opts),
      reference: createClient(rawDefinition(ReferenceModelService), [reference.address], opts),
      reward: createClient(rawDefinition(RewardScorerService), [reward.address], opts),
      trainer: createClient(rawDefinition(TrainerService), [trainerAddress], opts),
    };
    const big = 2n ** 60n;
    await expectStatus('WatchRun: after_sequence 2^60', IA, () => drain(raw.trainer.serverStream('watchRun' as never, Buffer.concat([WatchRunRequest.encode(WatchRunRequest.fromPartial({ runId: 'nope' })).finish(), varintField(2, big)]) as never)));
    await expectStatus('GetRun: garbage bytes', IA, () => raw.trainer.unary('getRun' as never, Buffer.from([0xff, 0xff, 0xff, 0xff]) as never));
    const rpcs: [string, keyof typeof raw, string, 'unary' | 'server' | 'client'][] = [
      ['Generate', 'sampler', 'generate', 'server'],
      ['sampler ComputeLogProbs', 'sampler', 'computeLogProbs', 'unary'],
      ['LoadWeights', 'sampler', 'loadWeights', 'client'],
      ['sampler GetInfo', 'sampler', 'getInfo', 'unary'],
      ['reference ComputeLogProbs', 'reference', 'computeLogProbs', 'unary'],
      ['reference GetInfo', 'reference', 'getInfo', 'unary'],
      ['Score', 'reward', 'score', 'unary'],
      ['RewardScorer GetInfo', 'reward', 'getInfo', 'unary'],
      ['StartRun', 'trainer', 'startRun', 'unary'],
      ['GetRun', 'trainer', 'getRun', 'unary'],
      ['ListRuns', 'trainer', 'listRuns', 'unary'],
      ['CancelRun', 'trainer', 'cancelRun', 'unary'],
      ['WatchRun', 'trainer', 'watchRun', 'server'],
    ];
    const perRpc = quick ? 4 : 12;
    const notInternal = ['OK', 'INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION', 'RESOURCE_EXHAUSTED', 'ALREADY_EXISTS', 'UNIMPLEMENTED'];
    for (const [label, service, method, kind] of rpcs) {
      const counts = new Map<string, number>();
      let ok = true;
      for (let k = 0; k < perRpc; k++) {
        const bytes = randomBytes(1000 * k + label.length * 7919 + 1, 1 + ((k * 37) % 200));
        const client = raw[service];
        const call = kind === 'unary' ? client.unary(method as never, bytes as never) : kind === 'server' ? drain(client.serverStream(method as never, bytes as never), 50) : client.clientStream(method as never, [bytes] as never);
        const observed = await outcome(call);
        count(observed);
        counts.set(observed, (counts.get(observed) ?? 0) + 1);
        if (!notInternal.includes(observed)) ok = false;
      }
      rows.push({ scenario: `${label}: ${perRpc} random byte strings`, expected: 'no INTERNAL/UNKNOWN', observed: [...counts].map(([c, n]) => `${c} x${n}`).join(', '), pass: ok });
    }
    for (const c of [sampler, ref, rew, trainer, ...Object.values(raw)]) c.close();

    // --- load: concurrent Generate and Score calls ---
    await loadServices(loadSampler.address, reward.address, quick);

    // Nothing crashed: every process is alive and SERVING.
    const all = [loadSampler, ...samplers, reference, reward];
    let crashes = 0;
    for (const s of all) if (s.child.exitCode !== null || s.child.signalCode !== null) crashes++;
    if (trainerGroup.services[0].process.exitCode !== null) crashes++;
    for (const a of [...all.map((s) => s.address), trainerAddress]) {
      const health = await checkHealth(a).catch((e: Error) => `no answer: ${e.message.slice(0, 80)}`);
      rows.push({ scenario: `health after the requests: ${a}`, expected: 'SERVING', observed: health, pass: health === 'SERVING' });
    }
    rows.push({ scenario: 'service processes that crashed during the requests', expected: '0', observed: String(crashes), pass: crashes === 0 });

    // --- faults during short GRPO runs ---
    const services = (kl: boolean) => ({ sampler_addresses: samplers.map((s) => s.address), reference_address: kl ? reference.address : null, reward_address: reward.address });
    const grpo = (runId: string, maxSteps: number, kl: boolean) =>
      resolveRlRunConfig(
        rlConfig(
          { runId, outputDir: runsDir, model, prompts, maxSteps, learningRate: 1e-3 },
          'grpo', { services: services(kl), reward_components: rewardComponentsJson(HAS_DIGIT), prompts_per_step: 4, num_generations: 4, advantage_estimator: 'grpo', num_iterations: 1, mini_batch_size: 16, beta: kl ? 0.02 : 0, temperature: 1, max_completion_length: 8 },
        ),
      );
    // A frozen replica must not stall a step past 3x the median + 10 s; a restarting service is waited for, within the 60 s retry window.
    const stallBound = (secs: number[]) => ({ bound: 3 * median(secs) + 10, rule: 'each step <= 3x median + 10 s' });
    const retryBound = () => ({ bound: 60, rule: 'each step <= the 60 s retry window' });
    const fault = async (scenario: string, maxSteps: number, kl: boolean, limit: (secs: number[]) => { bound: number; rule: string }, inject: (step: number, stop: () => void) => void, after?: () => Promise<void>) => {
      faultsInjected++;
      const steps: Record<string, number>[] = [];
      const controller = new AbortController();
      let observed: string;
      let pass = false;
      try {
        const res = await runRl(grpo(`fault-${faultsInjected}`, maxSteps, kl), { logger: quiet, serviceRetryMs: 60_000, signal: controller.signal, callbacks: { onStep: (e) => (steps.push(e.metrics), inject(e.step, () => controller.abort())) } });
        await after?.();
        const secs = steps.map((m) => m['time/step_seconds']);
        const lost = steps.reduce((n, m) => n + (16 - m['rollout/count']), 0);
        rolloutsLost += Math.max(0, lost);
        const worst = Math.max(...secs);
        const { bound } = limit(secs);
        // A run the scenario stopped itself (at a step boundary, after its fault) counts as complete.
        const finished = res.status === 'completed' ? steps.length === maxSteps : controller.signal.aborted && res.status === 'cancelled';
        pass = finished && lost === 0 && worst <= bound;
        observed = `${res.status === 'cancelled' && controller.signal.aborted ? 'stopped by the scenario' : res.status}, ${steps.length} steps, ${lost} rollouts lost, slowest step ${worst.toFixed(1)} s (bound ${bound.toFixed(1)} s)${downMs ? `, service down ${(downMs / 1000).toFixed(1)} s` : ''}${frozenMs ? `, frozen ${(frozenMs / 1000).toFixed(1)} s` : ''}`;
        downMs = 0;
        frozenMs = 0;
      } catch (err) {
        await after?.().catch(() => undefined);
        observed = `failed: ${(err as Error).message.slice(0, 120)}`;
      }
      if (pass) faultsSurvived++;
      rows.push({ scenario, expected: `run completes, 0 lost, ${limit([0]).rule}`, observed, pass });
    };
    let downMs = 0;
    let frozenMs = 0;
    const restartOnPort = async (s: ServiceProcess, args: string[]): Promise<ServiceProcess> => {
      const port = s.address.slice(s.address.lastIndexOf(':') + 1);
      const killedAt = Date.now();
      await s.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 2_000)); // down for 2 s, like a pod restart
      const back = await startService(s.name as 'reward', [...args, '--port', port]);
      downMs = Date.now() - killedAt;
      return back;
    };
    let frozenAt = 0;
    let thawed = false;
    // Frozen from step 2 for a fixed time, then 5 more steps, then the run is stopped (steps take 0.1-2 s by machine).
    let thawStep = 0;
    await fault(`SIGSTOP of 1 of 2 samplers for ${quick ? 10 : 30} s from step 2`, 1_000, false, stallBound, (step, stop) => {
      if (thawStep > 0 && step >= thawStep + 5) stop();
      if (step === 2) {
        samplers[1].child.kill('SIGSTOP');
        frozenAt = Date.now();
      } else if (frozenAt && !thawed && Date.now() - frozenAt >= (quick ? 10_000 : 30_000)) {
        samplers[1].child.kill('SIGCONT');
        thawed = true;
        thawStep = step;
        frozenMs = Date.now() - frozenAt;
      }
    }, async () => {
      if (!thawed) samplers[1].child.kill('SIGCONT');
    });
    let rewardBack: Promise<void> | null = null;
    await fault('SIGKILL of the reward service, back on its port 2 s later', 5, false, retryBound, (step) => {
      if (step === 2) rewardBack = restartOnPort(reward, []).then((s) => void (reward = s));
    }, async () => void (await rewardBack));
    if (!quick) {
      let refBack: Promise<void> | null = null;
      await fault('SIGKILL of the reference service, back on its port 2 s later', 5, true, retryBound, (step) => {
        if (step === 2) refBack = restartOnPort(reference, ['--model', model]).then((s) => void (reference = s));
      }, async () => void (await refBack));
      let killed: Promise<void> | null = null;
      await fault('SIGKILL of 1 of 2 samplers', 5, false, stallBound, (step) => {
        if (step === 2) killed = samplers[1].kill('SIGKILL');
      }, async () => void (await killed));
    }

    // --- SIGKILL of the Trainer service mid-run, restart on the same runs directory, resume ---
    faultsInjected++;
    const killed = await killTrainerAndResume(trainerGroup, roots, model, quick).catch((err: Error) => ({ restarted: null, survived: false, observed: `failed: ${err.message.slice(0, 120)}` }));
    restartedTrainer = killed.restarted;
    if (killed.survived) faultsSurvived++;
    else runsLost++;
    rows.push({ scenario: 'SIGKILL of the Trainer after a checkpoint of an SFT run, restart, resume', expected: 'INTERRUPTED, resumes to the uninterrupted weights', observed: killed.observed, pass: killed.survived });
  } finally {
    for (const s of samplers) if (s.child.exitCode === null) s.child.kill('SIGCONT');
    await Promise.all([loadSampler, ...samplers, reference, reward].map((s) => s.kill('SIGKILL')));
    await trainerGroup.stop(2_000);
    await restartedTrainer?.stop(2_000);
  }

  // --- the table ---
  const w = [Math.max(8, ...rows.map((r) => r.scenario.length)), Math.max(8, ...rows.map((r) => r.expected.length)), Math.max(8, ...rows.map((r) => r.observed.length))];
  const line = (a: string, b: string, c: string, d: string) => `${a.padEnd(w[0])} | ${b.padEnd(w[1])} | ${c.padEnd(w[2])} | ${d}`;
  console.log(line('scenario', 'expected', 'observed', 'pass'));
  console.log(`${'-'.repeat(w[0])}-+-${'-'.repeat(w[1])}-+-${'-'.repeat(w[2])}-+-----`);
  for (const r of rows) console.log(line(r.scenario, r.expected, r.observed, r.pass ? 'yes' : 'NO'));
  const failed = rows.filter((r) => !r.pass).length;
  const requests = [...byCode.values()].reduce((a, b) => a + b, 0);
  console.log(`\nrequests: ${requests}; statuses: ${[...byCode].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ')}`);
  console.log(`faults injected: ${faultsInjected}, survived: ${faultsSurvived}; runs lost: ${runsLost}; rollouts lost: ${rolloutsLost}`);
  console.log(`rows: ${rows.length}, failed: ${failed}; ${((Date.now() - began) / 1000).toFixed(0)} s${quick ? ' (--quick)' : ''}`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`reliability suite: ${err.stack ?? err.message}`);
    process.exit(2);
  },
);
