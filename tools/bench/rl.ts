// npm run bench:rl [-- --steps 8 --seed 0 --model DIR --samplers 1,2 --json]
// Synchronous vs asynchronous GRPO (max_staleness 0 vs 1) on the demo task's
// prompts and verifiable reward, with the demo's GRPO settings, from the
// shipped base model (or --model, e.g. a demo's SFT model), with 1 and 2
// policy samplers. The samplers, the reference and the reward service run as
// separate processes on loopback; the trainer runs in this process. Prints per
// configuration: steps/s and samples/s (over the steps after the first, which
// carries start-up), the trainer's idle fraction (time waiting for rollouts /
// step time), the samplers' idle fraction (time with no request in flight /
// wall time), mean push seconds, and the final reward (mean of the last two
// steps). With --json: one JSON object, asyncSpeedup = async steps/s over
// sync steps/s with 1 sampler.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initBackend } from '@posttrain/backend';
import { pipelinePlan } from '@posttrain/experiment';
import { defineConfig, parseConfig } from '@posttrain/flags';
import { RewardComponent } from '@posttrain/proto';
import { resolveRlRunConfig, runRl, startService } from '@posttrain/rl';
import type { ServiceProcess } from '@posttrain/rl';
import { taskRewardComponents, writeTaskFiles } from '@posttrain/task';
import { createLogger } from '@posttrain/telemetry';
import { parseRunConfig } from '@posttrain/training';

const options = defineConfig({
  steps: { kind: 'int', flag: 'steps', description: 'GRPO steps per configuration (the first is left out of the rates)', default: 8, min: 3 },
  seed: { kind: 'int', flag: 'seed', description: 'run seed', default: 0, min: 0 },
  model: { kind: 'string', flag: 'model', description: 'start model directory (default: the shipped base model)' },
  samplers: { kind: 'list', flag: 'samplers', description: 'sampler counts to measure: 1, 2 or 1,2', default: ['1', '2'] },
  json: { kind: 'bool', flag: 'json', description: 'print one JSON object', default: false },
});
const flags = parseConfig(options, { argv: process.argv.slice(2) });
const { steps, seed, json } = flags;
const samplerCounts = flags.samplers.map(Number);
if (samplerCounts.length === 0 || samplerCounts.some((n) => n !== 1 && n !== 2)) throw new Error(`--samplers: got ${JSON.stringify(flags.samplers.join(','))}, expected 1, 2 or 1,2`);

const root = resolve(__dirname, '..', '..');
const model = flags.model !== undefined ? resolve(flags.model) : join(root, 'models', 'tiny-arith-base');
if (!existsSync(join(model, 'config.json'))) throw new Error(`--model: ${JSON.stringify(model)} is not a model directory (no config.json)`);
// The demo's GRPO settings, on the unfiltered prompts: a throughput measure, so the demo's prompt filter
// (a greedy pass over the prompts before the run) is left out.
const demoGrpo = pipelinePlan('demo').grpo!;
const grpo = { promptsPerStep: demoGrpo.promptsPerStep, groupSize: demoGrpo.groupSize, learningRate: demoGrpo.learningRate, beta: demoGrpo.klCoefficient, maxNewTokens: demoGrpo.maxNewTokens };

interface Measured {
  samplers: number;
  maxStaleness: number;
  stepsPerSecond: number;
  samplesPerSecond: number;
  trainerIdle: number;
  samplerIdle: number;
  pushSeconds: number;
  finalReward: number;
}

async function measure(out: string, prompts: string, samplers: ServiceProcess[], reference: ServiceProcess, reward: ServiceProcess, maxStaleness: number): Promise<Measured> {
  const metrics: Record<string, number>[] = [];
  const times: number[] = [];
  const config = parseRunConfig(
    {
      stage: 'grpo',
      run_id: `grpo-${samplers.length}s-k${maxStaleness}`,
      output_dir: out,
      model,
      seed,
      dataset: { train: prompts },
      train: { max_steps: steps, learning_rate: grpo.learningRate, max_grad_norm: 1 },
      grpo: {
        services: { sampler_addresses: samplers.map((s) => s.address), reference_address: reference.address, reward_address: reward.address },
        reward_components: taskRewardComponents().map((c) => RewardComponent.toJSON(c)),
        prompts_per_step: grpo.promptsPerStep,
        num_generations: grpo.groupSize,
        mini_batch_size: grpo.promptsPerStep * grpo.groupSize,
        beta: grpo.beta,
        temperature: 1,
        max_completion_length: grpo.maxNewTokens,
        max_staleness: maxStaleness,
      },
    },
    'bench:rl',
  );
  await runRl(resolveRlRunConfig(config), {
    logger: createLogger({ service: 'bench', level: 'warn' }),
    callbacks: {
      onStep: (e) => {
        metrics.push(e.metrics);
        times.push(performance.now());
        if (!json) process.stderr.write(`  ${samplers.length} sampler(s), max_staleness ${maxStaleness}: step ${e.step}/${e.totalSteps}\n`);
      },
    },
  });
  const seconds = (times[times.length - 1] - times[0]) / 1000; // steps 2..n
  const later = metrics.slice(1);
  const sum = (key: string, rows = later) => rows.reduce((a, m) => a + (m[key] ?? 0), 0);
  const busy = metrics[metrics.length - 1]['time/generation_busy_seconds'] - metrics[0]['time/generation_busy_seconds'];
  return {
    samplers: samplers.length,
    maxStaleness,
    stepsPerSecond: later.length / seconds,
    samplesPerSecond: sum('rollout/count') / seconds,
    trainerIdle: sum('time/rollout_wait_seconds') / seconds,
    samplerIdle: Math.max(0, 1 - busy / seconds),
    pushSeconds: sum('time/push_seconds', metrics) / metrics.length,
    finalReward: (metrics[metrics.length - 1]['objective/scores'] + metrics[metrics.length - 2]['objective/scores']) / 2,
  };
}

async function main(): Promise<void> {
  await initBackend({ logger: createLogger({ service: 'bench', level: 'warn' }) });
  const out = await mkdtemp(join(tmpdir(), 'posttrain-bench-rl-'));
  await writeTaskFiles(join(out, 'task'));
  const prompts = join(out, 'task', 'prompts.jsonl');
  const samplerArgs = ['--model', model, '--max-new-tokens', String(grpo.maxNewTokens)];
  const services = await Promise.all([startService('policy-sampler', samplerArgs), startService('policy-sampler', samplerArgs), startService('reference', ['--model', model]), startService('reward', [])]);
  const [first, second, reference, reward] = services;
  const results: Measured[] = [];
  try {
    for (const samplers of samplerCounts.map((n) => (n === 1 ? [first] : [first, second]))) {
      for (const maxStaleness of [0, 1]) results.push(await measure(out, prompts, samplers, reference, reward, maxStaleness));
    }
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await rm(out, { recursive: true, force: true });
  }
  const rate = (samplers: number, k: number) => results.find((r) => r.samplers === samplers && r.maxStaleness === k)?.stepsPerSecond ?? Number.NaN;
  const asyncSpeedup = rate(1, 1) / rate(1, 0);
  if (json) {
    process.stdout.write(JSON.stringify({ steps, seed, model, results, asyncSpeedup, asyncSpeedupTwoSamplers: rate(2, 1) / rate(2, 0) }) + '\n');
    return;
  }
  const row = (cells: (string | number)[]) => cells.map((c) => String(c).padStart(14)).join('');
  console.log(row(['samplers', 'staleness', 'steps/s', 'samples/s', 'trainer idle', 'sampler idle', 'push s', 'reward']));
  for (const r of results) console.log(row([r.samplers, r.maxStaleness, r.stepsPerSecond.toFixed(3), r.samplesPerSecond.toFixed(2), r.trainerIdle.toFixed(2), r.samplerIdle.toFixed(2), r.pushSeconds.toFixed(3), r.finalReward.toFixed(3)]));
  console.log(`async speedup (steps/s, max_staleness 1 over 0): ${asyncSpeedup.toFixed(2)}x with 1 sampler, ${(rate(2, 1) / rate(2, 0)).toFixed(2)}x with 2`);
}

main().catch((e: Error) => {
  console.error(`bench:rl: ${e.message}`);
  process.exit(1);
});
