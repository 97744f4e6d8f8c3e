import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Run, RunState, TrainerService } from '@posttrain/proto';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import { createClient } from '@posttrain/rpc';
import { readMetricsJsonl } from '@posttrain/telemetry';
import { listCheckpoints } from '@posttrain/training';
import { UsageError, type Command } from '../command';

interface LocalRun {
  id: string;
  dir: string;
  stage: string;
  state: string;
  step: number;
  checkpoints: number[];
  lastMetrics: Record<string, number>;
  modified: Date;
}

/** Reads runs/<id>/ as the stage runners leave it: config.json, metrics.jsonl, checkpoints/, run.json (trainer service). */
async function readLocalRun(dir: string): Promise<LocalRun | null> {
  if (!existsSync(join(dir, 'config.json'))) return null;
  let stage = '?';
  try {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { stage?: string; algorithm?: string };
    stage = c.stage ?? c.algorithm ?? '?';
  } catch {
    stage = '(unreadable config.json)';
  }
  const metrics = readMetricsJsonl(join(dir, 'metrics.jsonl'));
  const last = metrics.at(-1);
  // The checkpoints a resume can use, found the way the stage runners find them.
  const cps = (await listCheckpoints(dir)).map((c) => c.step);
  let state = existsSync(join(dir, 'model', 'config.json')) ? 'completed' : cps.length ? 'stopped (resumable)' : 'incomplete';
  if (existsSync(join(dir, 'run.json'))) {
    try {
      const r = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { state?: string };
      if (r.state) state = r.state.replace(/^RUN_STATE_/, '').toLowerCase();
    } catch {
      // keep the state derived from the files
    }
  }
  const { step: _s, time: _t, ...lastMetrics } = last ?? { step: 0, time: 0 };
  return { id: dir.split('/').pop()!, dir, stage, state, step: last?.step ?? 0, checkpoints: cps, lastMetrics, modified: statSync(dir).mtime };
}

async function listLocal(runsDir: string): Promise<LocalRun[]> {
  if (!existsSync(runsDir)) throw new UsageError(`--dir: "${runsDir}" does not exist`);
  const dirs = readdirSync(runsDir)
    .map((n) => join(runsDir, n))
    .filter((p) => statSync(p).isDirectory());
  return (await Promise.all(dirs.map(readLocalRun))).filter((r): r is LocalRun => r !== null).sort((a, b) => b.modified.getTime() - a.modified.getTime());
}

const fmtMetrics = (m: Record<string, number>, n = 6) =>
  Object.entries(m)
    .slice(0, n)
    .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toPrecision(4)}`)
    .join('  ');

const fmtRemote = (r: Run) => `${r.id.padEnd(24)} ${RunState[r.state].toLowerCase().padEnd(10)} ${r.spec?.stage?.$case ?? '?'}  step ${r.lastStep}/${r.totalSteps}${r.errorMessage ? `  error: ${r.errorMessage}` : ''}`;

const listOptions = defineConfig({
  dir: { kind: 'string', flag: 'dir', description: 'runs directory to read', default: 'runs' },
  addr: { kind: 'string', flag: 'addr', description: 'ask a trainer service (host:port) instead of reading a directory' },
  json: { kind: 'bool', flag: 'json', description: 'print JSON', default: false },
});

export const runsListCommand: Command = {
  name: 'runs list',
  summary: 'list training runs (newest first) from a runs directory or a trainer service',
  help: () => `usage: posttrain runs list [--dir runs | --addr HOST:PORT] [--json]\n\nOptions:\n${describeConfig(listOptions)}\n`,
  run: async (argv, io) => {
    const o = parseConfig(listOptions, { argv });
    if (o.addr) {
      const client = createClient(TrainerService, o.addr, { deadlineMs: 10_000 });
      try {
        const runs: Run[] = [];
        let pageToken = '';
        do {
          const page = await client.unary('listRuns', { pageSize: 100, pageToken });
          runs.push(...page.runs);
          pageToken = page.nextPageToken;
        } while (pageToken);
        io.stdout.write(o.json ? JSON.stringify(runs.map((r) => Run.toJSON(r))) + '\n' : runs.length ? runs.map(fmtRemote).join('\n') + '\n' : 'no runs\n');
      } finally {
        client.close();
      }
      return 0;
    }
    const runs = await listLocal(resolve(o.dir));
    if (o.json) io.stdout.write(JSON.stringify(runs) + '\n');
    else if (runs.length === 0) io.stdout.write(`no runs in ${o.dir}\n`);
    else for (const r of runs) io.stdout.write(`${r.id.padEnd(24)} ${r.stage.padEnd(5)} ${r.state.padEnd(20)} step ${String(r.step).padEnd(6)} ${fmtMetrics(r.lastMetrics, 3)}\n`);
    return 0;
  },
};

export const runsShowCommand: Command = {
  name: 'runs show',
  summary: "one run's state, last metrics, checkpoints and report",
  help: () => `usage: posttrain runs show ID [--dir runs | --addr HOST:PORT] [--json]\n\nOptions:\n${describeConfig(listOptions)}\n`,
  run: async (argv, io) => {
    const [id, ...rest] = argv;
    if (!id || id.startsWith('--')) throw new UsageError('missing ID: posttrain runs show ID');
    const o = parseConfig(listOptions, { argv: rest });
    if (o.addr) {
      const client = createClient(TrainerService, o.addr, { deadlineMs: 10_000 });
      try {
        const r = await client.unary('getRun', { runId: id });
        io.stdout.write(o.json ? JSON.stringify(Run.toJSON(r)) + '\n' : `${fmtRemote(r)}\n  output:  ${r.outputDir}\n  last checkpoint: ${r.lastCheckpoint?.path ?? '(none)'}\n  metrics: ${fmtMetrics(r.metricsSummary, 12)}\n`);
      } finally {
        client.close();
      }
      return 0;
    }
    const dir = join(resolve(o.dir), id);
    const r = existsSync(dir) ? await readLocalRun(dir) : null;
    if (!r) throw new UsageError(`run "${id}" not found in ${o.dir} (no ${join(o.dir, id, 'config.json')})`);
    if (o.json) io.stdout.write(JSON.stringify(r) + '\n');
    else
      io.stdout.write(
        `${r.id}\n  stage:        ${r.stage}\n  state:        ${r.state}\n  step:         ${r.step}\n  checkpoints:  ${r.checkpoints.length ? r.checkpoints.map((s) => `step-${s}`).join(', ') : '(none)'}\n  last metrics: ${fmtMetrics(r.lastMetrics, 12)}\n  report:       ${existsSync(join(dir, 'report.html')) ? join(dir, 'report.html') : '(none)'}\n  model:        ${existsSync(join(dir, 'model', 'config.json')) ? join(dir, 'model') : '(not yet)'}\n`,
      );
    return 0;
  },
};

const cancelOptions = defineConfig({
  addr: { kind: 'string', flag: 'addr', description: 'the trainer service (host:port) that owns the run', required: true },
  reason: { kind: 'string', flag: 'reason', description: "recorded in the run's log", default: 'cancelled from the command line' },
});

export const runsCancelCommand: Command = {
  name: 'runs cancel',
  summary: 'ask the trainer service that owns a run to stop it at the next step boundary',
  help: () => `usage: posttrain runs cancel ID --addr HOST:PORT\n\nA run started by \`posttrain sft|...\` in a terminal stops with Ctrl-C instead.\n\nOptions:\n${describeConfig(cancelOptions)}\n`,
  run: async (argv, io) => {
    const [id, ...rest] = argv;
    if (!id || id.startsWith('--')) throw new UsageError('missing ID: posttrain runs cancel ID --addr HOST:PORT');
    const o = parseConfig(cancelOptions, { argv: rest });
    const client = createClient(TrainerService, o.addr, { deadlineMs: 10_000 });
    try {
      const r = await client.unary('cancelRun', { runId: id, reason: o.reason });
      io.stdout.write(`${fmtRemote(r)}\n`);
    } finally {
      client.close();
    }
    return 0;
  },
};

export const RUNS_COMMANDS = [runsListCommand, runsShowCommand, runsCancelCommand];
