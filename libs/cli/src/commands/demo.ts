import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { claimInputs, formatResultsMarkdown, formatTextTable, judgeClaims, modelTable, seedSummaryTable, PipelineCancelledError, pipelinePlan, pipelineProgress, poolClaimInputs, runPipeline, writePipelineArtifacts } from '@posttrain/experiment';
import type { PipelineResult, ServiceLauncher } from '@posttrain/experiment';
import { MemoryRunSource } from '@posttrain/dashboard';
import type { DashboardServer } from '@posttrain/dashboard';
import { defineConfig, describeConfig, parseConfig, parseSeeds } from '@posttrain/flags';
import { RunState } from '@posttrain/proto';
import { type Command, type CommandIO, UsageError } from '../command';
import { repoRoot } from '../repo-paths';
import { startLocalServices } from '../local-services';
import { pipelineFeed, startPipelineDashboard } from '../pipeline-dashboard';
import { runSeedProcesses } from './seed-processes';

const pipelineOptions = defineConfig({
  out: { kind: 'string', flag: 'out', description: 'output directory (must be new or empty); default runs/<name>-<UTC time>' },
  quick: { kind: 'bool', flag: 'quick', description: 'toy sizes: every stage still runs, in about a minute (for a first look and tests)', default: false },
  seed: { kind: 'int', flag: 'seed', description: 'seed of every post-training run (demo; the experiment runs --seeds)', default: 0, min: 0, max: 0xffffffff },
  seeds: { kind: 'list', flag: 'seeds', description: 'experiment: seeds to run and pool, comma-separated', default: ['0', '1', '2'] },
  jobs: { kind: 'int', flag: 'jobs', description: "experiment: seeds run at once, each in its own process (a seed's stages use one core); default every seed at once, at most twice the CPU cores; 1: one after another in this process", min: 1, max: 64 },
  parallelStages: { kind: 'int', flag: 'parallel-stages', description: 'stages run at once when they do not need each other (GRPO from base beside SFT; the reward model, DPO and GRPO from SFT after it), each on its own core in a worker thread; default the CPU cores shared among the seeds at once, at most 4; 1: one after another, as on the tensorflow backends, which use every core (or the GPU) per stage', min: 1, max: 16 },
  fromScratch: { kind: 'bool', flag: 'from-scratch', description: 'rebuild the base model from its recipe first (about an hour on 2 cores; --quick: a toy base in seconds) instead of starting from the shipped models/tiny-arith-base', default: false },
  baseModel: { kind: 'string', flag: 'base-model', description: 'start from this base model directory instead of the shipped models/tiny-arith-base' },
  dashboard: { kind: 'bool', flag: 'dashboard', description: 'serve the live dashboard (runs, curves, recent samples) on 127.0.0.1 while the stages run; --no-dashboard: none', default: true },
  dashboardPort: { kind: 'int', flag: 'dashboard-port', description: "the live dashboard's port on 127.0.0.1; default 0, a free port", min: 0, max: 65535 },
});

/** The options block of `demo` and `experiment` help. */
export function pipelineOptionsHelp(): string {
  return describeConfig(pipelineOptions);
}

/** Stages at once per seed by default: the cores shared among the `jobs` seeds running at once, at least 1 and at most 4 (the pipeline's graph is rarely wider). */
export function defaultParallelStages(jobs: number, cores: number): number {
  return Math.max(1, Math.min(4, Math.floor(cores / jobs)));
}

/** The shipped base model (models/tiny-arith-base in the repository). */
export function shippedBaseModelDir(): string {
  return join(repoRoot(), 'models', 'tiny-arith-base');
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}

/** The GRPO stages' serving tier: each service a child process on loopback, as `posttrain up` starts them. */
function localLauncher(io: CommandIO): ServiceLauncher {
  let n = 0;
  return async (specs) => {
    n++;
    const labelled = specs.map((s, i) => ({ name: s.name, label: `${s.name}-${n}.${i}`, args: s.args, env: { POSTTRAIN_LOG_LEVEL: 'warn' } }));
    const group = await startLocalServices(
      labelled,
      { host: '127.0.0.1', startupTimeoutMs: 180_000 },
    );
    group.onUnexpectedExit = (label, code, signal) => io.stderr.write(`${label} exited unexpectedly (${signal ?? code})\n`);
    // group.services is in order of readiness; the launcher answers in the order asked.
    const addresses = labelled.map((l) => group.services.find((s) => s.label === l.label)!.address);
    return { addresses, stop: () => group.stop() };
  };
}

/** Runs the demo (one seed) or the experiment (every seed, claims pooled) with progress on stderr, then prints the table, the claims and the report's path. */
export async function runPipelineCommand(name: 'demo' | 'experiment', argv: readonly string[], io: CommandIO): Promise<number> {
  const opts = parseConfig(pipelineOptions, { argv });
  const seeds = name === 'experiment' ? parseSeeds(opts.seeds) : [opts.seed];
  const out = opts.out ?? `runs/${name}-${stamp()}`;
  if (existsSync(out) && readdirSync(out).length > 0) throw new UsageError(`--out: ${out} already exists and is not empty; choose another directory or remove it`);
  const baseModelDir = opts.baseModel ?? shippedBaseModelDir();
  if (!opts.fromScratch && !existsSync(join(baseModelDir, 'config.json'))) {
    throw new UsageError(`${opts.baseModel ? '--base-model' : 'the shipped base model'}: ${baseModelDir} holds no config.json; pass --base-model DIR or rebuild it with --from-scratch`);
  }
  if (!opts.dashboard && opts.dashboardPort !== undefined) throw new UsageError(`--dashboard-port: got ${opts.dashboardPort} with --no-dashboard, expected one or the other`);
  if (name === 'demo' && opts.jobs !== undefined) throw new UsageError(`--jobs: got ${opts.jobs}, but the demo runs one seed; --jobs is for posttrain experiment`);
  const jobs = name === 'experiment' ? Math.min(opts.jobs ?? 2 * availableParallelism(), seeds.length) : 1;
  const lanes = opts.parallelStages ?? defaultParallelStages(jobs, availableParallelism());
  if (jobs > 1 && opts.dashboardPort !== undefined) throw new UsageError(`--dashboard-port: got ${opts.dashboardPort} with ${jobs} seeds at once, each serving its own dashboard on a free port; pass --jobs 1 to serve one on a chosen port`);
  const ac = new AbortController();
  void io.interrupted.then((sig) => {
    io.stderr.write(`\n${sig}: stopping at the next step boundary\n`);
    ac.abort();
  });
  io.stderr.write(`posttrain ${name}${opts.quick ? ' --quick' : ''}: writing to ${out}; base model: ${opts.fromScratch ? 'rebuilt from scratch' : baseModelDir}\n`);
  if (jobs > 1) return runSeedsInProcesses(name, seeds, jobs, lanes, out, opts, baseModelDir, ac.signal, io);
  const source = new MemoryRunSource();
  let dashboard: DashboardServer | null = null;
  if (opts.dashboard) {
    dashboard = await startPipelineDashboard(source, name, '127.0.0.1', opts.dashboardPort ?? 0);
    io.stderr.write(`posttrain ${name}: live dashboard at ${dashboard.url}\n`);
  }
  const runs: PipelineResult[] = [];
  let feed = pipelineFeed(source);
  try {
    for (const seed of seeds) {
      feed = pipelineFeed(source, seeds.length > 1 ? `seed-${seed}/` : '');
      const progress = pipelineProgress(io.stderr as NodeJS.WritableStream & { isTTY?: boolean });
      const plan = pipelinePlan(name, { quick: opts.quick, seed });
      const dir = seeds.length > 1 ? join(out, `seed-${seed}`) : out;
      if (seeds.length > 1) io.stderr.write(`--- seed ${seed} (${runs.length + 1} of ${seeds.length}) ---\n`);
      const result = await runPipeline(plan, dir, {
        signal: ac.signal,
        launchServices: localLauncher(io),
        onEvent: (e) => {
          progress(e);
          feed.onEvent(e);
        },
        baseModelDir,
        lanes,
        // With several seeds, the base model is rebuilt once (first seed) and shared.
        fromScratch: opts.fromScratch && runs.length === 0,
        ...(opts.fromScratch && runs.length > 0 ? { baseModelDir: runs[0].baseModel.dir } : {}),
      });
      runs.push(result);
      if (seeds.length > 1) writePipelineArtifacts(dir, [result], result.claims, formatResultsMarkdown([result]));
    }
  } catch (e) {
    feed.stop(e instanceof PipelineCancelledError ? RunState.CANCELLED : RunState.FAILED, e instanceof Error ? e.message : String(e));
    if (e instanceof PipelineCancelledError) {
      io.stderr.write(`posttrain ${name}: ${e.message}; finished stages are kept in ${out}\n`);
      return 130;
    }
    throw e;
  } finally {
    await dashboard?.close();
  }
  printPipelineResults(runs, out, io);
  return 0;
}

/** `experiment --jobs N` (N > 1): every seed in its own process (seed-processes.ts), then the claims pooled here. */
async function runSeedsInProcesses(name: 'demo' | 'experiment', seeds: number[], jobs: number, lanes: number, out: string, opts: { quick: boolean; fromScratch: boolean; dashboard: boolean }, baseModelDir: string, signal: AbortSignal, io: CommandIO): Promise<number> {
  io.stderr.write(`posttrain ${name}: ${seeds.length} seeds, ${jobs} at a time, each in its own process (its lines prefixed [seed N]; its run in ${join(out, 'seed-N')})\n`);
  const runs = await runSeedProcesses({ seeds, jobs, parallelStages: lanes, out, quick: opts.quick, fromScratch: opts.fromScratch, baseModelDir, dashboard: opts.dashboard, io, signal });
  if (runs === 'cancelled') {
    io.stderr.write(`posttrain ${name}: stopped; finished stages are kept in ${out}\n`);
    return 130;
  }
  printPipelineResults(runs, out, io);
  return 0;
}

/** Pools the claims over the runs (more than one), writes the artifacts into `out` and prints the table, the claims and their paths. */
function printPipelineResults(runs: readonly PipelineResult[], out: string, io: CommandIO): void {
  const pooled = runs.length > 1 ? poolClaimInputs(runs.map((r) => claimInputs(r))) : null;
  const claims = pooled ? judgeClaims(pooled) : runs[0].claims;
  const paths = writePipelineArtifacts(out, runs, claims, formatResultsMarkdown(runs, claims), pooled ? { pooled } : {});
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  io.stdout.write(
    [
      '',
      ...(runs.length > 1 ? [`models over ${runs.length} seeds (mean ± sd):`, formatTextTable(seedSummaryTable(runs)), ''] : [formatTextTable(modelTable(runs[0])), '']),
      `base model plain-text competence: ${runs.map((r) => `${pct(r.baseModel.competence.value)} ± ${pct(r.baseModel.competence.stderr)}`).join(', ')} of held-out prose prompts`,
      `reward model: held-out style pairs ranked right ${runs.map((r) => pct(r.rewardModelAccuracy.value)).join(', ')}`,
      ...runs.map((r) => `stages${runs.length > 1 ? ` (seed ${r.plan.seed})` : ''}: ${r.stages.map((s) => `${s.stage} ${s.seconds.toFixed(0)} s`).join(', ')}; total ${r.totalSeconds.toFixed(0)} s`),
      '',
      ...(runs.length > 1 ? [`claims, ${runs.length} seeds pooled (mean; SE from items and seeds):`] : []),
      ...claims.flatMap((c) => [`claim ${c.id}: ${c.verdict}. ${c.statement}`, ...c.checks.map((k) => `  - ${k.what}: ${k.measured} -> ${k.verdict}`)]),
      '',
      `results: ${paths.markdown} (and ${paths.json})`,
      `report:  ${paths.report}`,
      '',
    ].join('\n'),
  );
}

/** `posttrain demo`: the embedded default, from the shipped base: SFT -> reward model -> PPO, DPO and GRPO on a tiny model, in a few minutes on a laptop CPU. */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'watch a tiny pretrained model go base -> SFT -> reward model + PPO, DPO, GRPO on the built-in task; claims + report.html',
  help: () =>
    `usage: posttrain demo [--out DIR] [--quick] [--seed N] [--parallel-stages N] [--from-scratch] [--base-model DIR] [--dashboard-port N | --no-dashboard]\n\nStarts from the shipped base model (models/tiny-arith-base: pretrained on the built-in arithmetic\ntask's prose corpus; it does the sums in plain text but has never seen a chat turn), then runs SFT,\na reward model on style preferences, PPO with that reward model and a KL penalty to SFT, DPO from\nSFT, and GRPO with the verifiable reward from SFT and from base (samplers, reference and reward\nservices started on loopback), evaluating each model: answer accuracy, format rate, preferred-style\nrate and style entropy, preference ranking. Ends with a results table, the claims of the seed\ndocuments judged with their standard errors, and one report.html. No GPU; 4 to 8 minutes on 2 CPU\ncores, by the host's speed, with stages that do not need each other run side by side (--quick: toy\nsizes, about a minute). --from-scratch first rebuilds the base model from its\nrecipe (about an hour on 2 cores). While the stages run, a live dashboard (each stage a run: curves,\nlatest step, recent PPO/GRPO samples with their rewards) is served on 127.0.0.1; its address is\nprinted first.\n\nOptions:\n${pipelineOptionsHelp()}\n`,
  run: (argv, io) => runPipelineCommand('demo', argv, io),
};
