/**
 * Support for the RL end-to-end specs: a tiny model directory with the
 * built-in tokenizer, a prompts file, a run config builder, and the serving
 * services started as separate processes on loopback (as `posttrain up`
 * starts them; the CLI's helper cannot be imported from a library).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { createModelConfig, initModelDir } from '@posttrain/model';
import { LengthUnit, RewardComponent } from '@posttrain/proto';
import { waitForServing } from '@posttrain/rpc';
import { buildBuiltinTokenizerFiles } from '@posttrain/tokenizer';
import { parseRunConfig, type RunConfig } from '@posttrain/training';

const repoRoot = resolve(__dirname, '..', '..', '..');

export interface ServiceProcess {
  name: string;
  address: string;
  /** The Prometheus /metrics port, when `--metrics-port` was among the arguments. */
  metricsPort?: number;
  child: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts services/<name>/src/main.ts on a free loopback port; resolves once it answers SERVING. */
export async function startService(name: 'policy-sampler' | 'reference' | 'reward', args: string[]): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'services', name, 'src', 'main.ts'), '--host', '127.0.0.1', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, POSTTRAIN_LOG_LEVEL: 'info' },
  });
  const tail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => {
    tail.push(l);
    if (tail.length > 20) tail.shift();
  });
  const listening = await new Promise<{ address: string; metricsPort?: number }>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not listen within 120 s:\n${tail.join('\n')}`)), 120_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      try {
        const rec = JSON.parse(line) as { event?: string; address?: string; metrics_port?: number };
        if (rec.event === 'listening' && rec.address) {
          clearTimeout(timer);
          ok({ address: rec.address, metricsPort: rec.metrics_port });
        }
      } catch {
        // not JSON: kept for the error message
      }
    });
    child.once('exit', (code, signal) => (clearTimeout(timer), fail(new Error(`${name} exited (${signal ?? code}):\n${tail.join('\n')}`))));
  });
  const { address, metricsPort } = listening;
  await waitForServing(address, { timeoutMs: 120_000 });
  return {
    name,
    address,
    metricsPort,
    child,
    kill: (signal: NodeJS.Signals = 'SIGTERM') =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', () => done());
        child.kill(signal);
      }),
  };
}

/** A tiny Llama (hidden 32, 2 layers) with the built-in tokenizer (vocabulary 101, EOS 2 unless options.eosTokenId says otherwise, null: none; pad 3). */
export async function writeTinyPolicy(seed: number, options: { eosTokenId?: number | null } = {}): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'posttrain-rl-')), 'model');
  const eosTokenId = options.eosTokenId === undefined ? 2 : options.eosTokenId;
  const config = createModelConfig({ vocabSize: 101, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 64, eosTokenId, padTokenId: 3 });
  const files = buildBuiltinTokenizerFiles();
  await initModelDir(dir, { ...config, initializerRange: 0.2 }, {
    seed,
    assets: {
      'tokenizer.json': JSON.stringify(files.tokenizerJson),
      'tokenizer_config.json': JSON.stringify(files.tokenizerConfig),
      'special_tokens_map.json': JSON.stringify(files.specialTokensMap),
    },
  });
  return dir;
}

/** A prompt-only JSONL file of `count` short arithmetic prompts. */
export async function writePrompts(count: number): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'posttrain-rl-data-')), 'prompts.jsonl');
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ prompt: `${i % 10}+${(i * 3) % 10}=`, ground_truth: String((i % 10) + ((i * 3) % 10)) }));
  await writeFile(path, lines.join('\n') + '\n');
  return path;
}

/** -0.2 per character beyond 2: the tiny model learns to end early (emit EOS), a quick signal for PPO. */
export const SHORT: RewardComponent = { name: 'short', weight: 1, rule: { $case: 'lengthPenalty', value: { targetLength: 2, penaltyPerUnit: 0.2, maxPenalty: 0, unit: LengthUnit.CHARACTERS } } };

/** 1 when the completion contains a digit: a verifiable rule with a useful base rate for GRPO groups. */
export const HAS_DIGIT: RewardComponent = { name: 'has_digit', weight: 1, rule: { $case: 'regex', value: { pattern: '[0-9]', flags: '', fullMatch: false, negate: false } } };

/** Reward components in the JSON form a run config's reward_components list holds. */
export function rewardComponentsJson(...components: RewardComponent[]): Record<string, unknown>[] {
  return components.map((component) => RewardComponent.toJSON(component) as Record<string, unknown>);
}

/** The common keys of an RL spec's run config. */
export interface RlConfigCommon {
  runId: string;
  outputDir: string;
  model: string;
  prompts: string;
  seed?: number;
  maxSteps: number;
  learningRate: number;
  checkpointEvery?: number;
  resume?: boolean;
}

/** The raw run config (as YAML would give it) of stage ppo or grpo; `section` holds the stage's keys (libs/training's schema). */
export function rlRawConfig(common: RlConfigCommon, stage: 'ppo' | 'grpo', section: Record<string, unknown>): Record<string, unknown> {
  return {
    stage,
    run_id: common.runId,
    output_dir: common.outputDir,
    model: common.model,
    dataset: { train: common.prompts },
    seed: common.seed ?? 1,
    train: { max_steps: common.maxSteps, learning_rate: common.learningRate, max_grad_norm: 1, save_steps: common.checkpointEvery ?? null },
    resume: common.resume ?? false,
    [stage]: section,
  };
}

/** rlRawConfig, validated. */
export function rlConfig(common: RlConfigCommon, stage: 'ppo' | 'grpo', section: Record<string, unknown>): RunConfig {
  return parseRunConfig(rlRawConfig(common, stage, section), `${stage} spec config`);
}
