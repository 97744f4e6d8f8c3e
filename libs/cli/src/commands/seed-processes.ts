/**
 * The experiment's seeds as parallel processes (`posttrain experiment
 * --jobs N`): each seed runs as its own `posttrain experiment --seeds S --out
 * OUT/seed-S`, at most N at a time, and this process reads their
 * results.json back to pool the claims. The stages of one seed are single
 * threaded (wasm, and the native kernels at one thread), so on a 2-core
 * machine two seeds at once take about the time of one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PipelineResult } from '@posttrain/experiment';
import type { CommandIO } from '../command';
import { repoRoot } from '../repo-paths';

export interface SeedProcessOptions {
  seeds: readonly number[];
  /** Seeds running at once. */
  jobs: number;
  /** Each seed's stages at once (`--parallel-stages`). */
  parallelStages: number;
  /** The experiment's output directory; seed S writes OUT/seed-S. */
  out: string;
  quick: boolean;
  /** Rebuild the base model: the first seed alone does, then the others start from its base. */
  fromScratch: boolean;
  baseModelDir: string;
  dashboard: boolean;
  io: CommandIO;
  /** Aborted: every running seed is asked to stop at its next step boundary (SIGINT). */
  signal: AbortSignal;
}

/** Why a seed's process did not give a result. */
export class SeedProcessError extends Error {
  constructor(
    readonly seed: number,
    readonly code: number | null,
    readonly signalName: NodeJS.Signals | null,
  ) {
    super(`seed ${seed}: its process exited with ${signalName ?? `code ${code}`}; its output is above, prefixed [seed ${seed}], and its finished stages are in seed-${seed}/`);
    this.name = 'SeedProcessError';
  }
}

/** Copies `from` to `to` a line at a time, each line prefixed. */
function relayLines(from: NodeJS.ReadableStream, to: NodeJS.WritableStream, prefix: string): void {
  let pending = '';
  from.setEncoding('utf8');
  from.on('data', (chunk: string) => {
    const lines = (pending + chunk).split(/\r?\n|\r/);
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') to.write(`${prefix}${line}\n`);
  });
  from.on('end', () => {
    if (pending.trim() !== '') to.write(`${prefix}${pending}\n`);
  });
}

/** The arguments of one seed's process. */
export function seedProcessArgs(seed: number, o: Pick<SeedProcessOptions, 'out' | 'quick' | 'dashboard' | 'parallelStages'> & { fromScratch: boolean; baseModelDir: string | null }): string[] {
  return [
    'experiment',
    '--seeds',
    String(seed),
    '--jobs',
    '1',
    '--parallel-stages',
    String(o.parallelStages),
    '--out',
    join(o.out, `seed-${seed}`),
    ...(o.quick ? ['--quick'] : []),
    ...(o.fromScratch ? ['--from-scratch'] : ['--base-model', o.baseModelDir!]),
    ...(o.dashboard ? [] : ['--no-dashboard']),
  ];
}

/**
 * Runs every seed in its own process, `jobs` at a time, in the order given,
 * relaying each one's stderr line by line as `[seed S] ...`. Resolves with
 * the results in the order of `seeds`, or 'cancelled' when the signal
 * stopped them; rejects with a SeedProcessError when a seed fails (the
 * others are stopped first).
 */
export async function runSeedProcesses(o: SeedProcessOptions): Promise<PipelineResult[] | 'cancelled'> {
  const results = new Map<number, PipelineResult>();
  const running = new Set<ChildProcess>();
  const state: { failure: SeedProcessError | null } = { failure: null };
  const stopAll = (): void => {
    for (const child of running) child.kill('SIGINT');
  };
  o.signal.addEventListener('abort', stopAll, { once: true });

  const runOne = (seed: number, fromScratch: boolean, baseModelDir: string | null): Promise<void> =>
    new Promise((resolve) => {
      const args = seedProcessArgs(seed, { out: o.out, quick: o.quick, dashboard: o.dashboard, parallelStages: o.parallelStages, fromScratch, baseModelDir });
      const child = spawn(process.execPath, [join(repoRoot(), 'bin', 'posttrain.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: process.env });
      running.add(child);
      relayLines(child.stderr!, o.io.stderr, `[seed ${seed}] `);
      child.on('close', (code, sig) => {
        running.delete(child);
        const file = join(o.out, `seed-${seed}`, 'results.json');
        if (code === 0 && existsSync(file)) results.set(seed, JSON.parse(readFileSync(file, 'utf8')) as PipelineResult);
        else if (!o.signal.aborted && state.failure === null) {
          state.failure = new SeedProcessError(seed, code, sig);
          stopAll();
        }
        resolve();
      });
    });

  try {
    const queue = [...o.seeds];
    let base: string | null = o.baseModelDir;
    if (o.fromScratch && queue.length > 0) {
      // The base model is rebuilt once, by the first seed; the others start from it.
      const first = queue.shift()!;
      await runOne(first, true, null);
      const r = results.get(first);
      if (!r) {
        if (state.failure) throw state.failure;
        return 'cancelled';
      }
      base = r.baseModel.dir;
    }
    const worker = async (): Promise<void> => {
      while (queue.length > 0 && state.failure === null && !o.signal.aborted) await runOne(queue.shift()!, false, base);
    };
    await Promise.all(Array.from({ length: Math.min(o.jobs, Math.max(queue.length, 1)) }, worker));
  } finally {
    o.signal.removeEventListener('abort', stopAll);
  }
  if (state.failure) throw state.failure;
  if (o.signal.aborted) return 'cancelled';
  return o.seeds.map((s) => results.get(s)!);
}
