// npm run bench:grpo-prompts -- --model DIR --task DIR [--seeds 0,1,2 --steps 16 --eval 256 --json]
//   [--filters all,failed --prompts FILE --learning-rate X --group-size N --kl X]
// Does GRPO's prompt filter help? From one start model (a demo's SFT model:
// <demo out>/runs/sft-300/model) and a demo's task directory (<demo out>/task),
// runs GRPO with the demo's settings once per seed on the task's RL prompts
// unfiltered ('all') and on the first steps x prompts-per-step of them the
// start model answers wrong greedily ('failed'), then evaluates the start model
// and every GRPO model greedily on the first --eval held-out prompts
// (prompts-eval.jsonl). Prints, per filter and seed, the held-out accuracy and
// its gain over the start model paired over prompts (± 1 SE), the prompts it
// fixed and broke, the KL to the start model at the last step, and the mean
// gain per filter over the seeds (± SE across seeds). The services run as
// separate processes on loopback, as in the demo.
//
// --prompts takes the RL prompts from another file, e.g. a larger pool written
// by `posttrain task generate --seed 7 --prompts 4000 ...`; a prompt whose
// operands and answer are those of a held-out problem of --task is dropped
// first (another seed's task draws its own held-out problems), and the count
// dropped is printed. --learning-rate, --group-size and --kl override the
// demo's GRPO settings.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initBackend } from '@posttrain/backend';
import { evaluateAnswers, modelCompleteFn, pairedDifference, pipelinePlan, readEvalData, runRlStage, writeFailedPrompts, writeSelectedLines } from '@posttrain/experiment';
import type { AnswerItem, CompleteFn, ServiceLauncher } from '@posttrain/experiment';
import { defineConfig, parseConfig, parseSeeds } from '@posttrain/flags';
import { loadModel } from '@posttrain/model';
import { startService } from '@posttrain/rl';
import { CORRECT_COMPONENT } from '@posttrain/task';
import { createLogger } from '@posttrain/telemetry';
import { loadTokenizer } from '@posttrain/tokenizer';

const demoGrpo = pipelinePlan('demo').grpo!;
const options = defineConfig({
  model: { kind: 'string', flag: 'model', description: 'start model directory (a demo run\'s runs/sft-300/model)' },
  task: { kind: 'string', flag: 'task', description: 'task directory with prompts.jsonl and prompts-eval.jsonl (a demo run\'s task/)' },
  seeds: { kind: 'list', flag: 'seeds', description: 'GRPO seeds (rollouts and minibatches; the start model is the same)', default: ['0', '1', '2'] },
  steps: { kind: 'int', flag: 'steps', description: 'GRPO steps per run', default: demoGrpo.steps, min: 1 },
  filters: { kind: 'list', flag: 'filters', description: "prompt filters to run, of 'all' and 'failed'", default: ['all', 'failed'] },
  prompts: { kind: 'string', flag: 'prompts', description: "RL prompts file (default: --task's prompts.jsonl); prompts of --task's held-out problems are dropped" },
  learningRate: { kind: 'number', flag: 'learning-rate', description: 'GRPO learning rate', default: demoGrpo.learningRate, min: 0 },
  groupSize: { kind: 'int', flag: 'group-size', description: 'completions per prompt', default: demoGrpo.groupSize, min: 2 },
  kl: { kind: 'number', flag: 'kl', description: 'KL coefficient to the start model', default: demoGrpo.klCoefficient, min: 0 },
  eval: { kind: 'int', flag: 'eval', description: 'held-out prompts to evaluate on', default: 256, min: 1 },
  json: { kind: 'bool', flag: 'json', description: 'print one JSON object', default: false },
});
type Filter = 'all' | 'failed';
interface Flags {
  model: string;
  task: string;
  prompts: string;
  seeds: number[];
  filters: Filter[];
  steps: number;
  learningRate: number;
  groupSize: number;
  kl: number;
  evalPrompts: number;
  json: boolean;
}
/** The flags, checked; a bad one ends the process with a message naming it (no stack). */
function readFlags(): Flags {
  try {
    const f = parseConfig(options, { argv: process.argv.slice(2) });
    if (f.model === undefined) throw new Error('--model: missing, expected the start model directory (e.g. <demo out>/runs/sft-300/model)');
    if (f.task === undefined) throw new Error('--task: missing, expected a task directory (e.g. <demo out>/task)');
    const model = resolve(f.model);
    const task = resolve(f.task);
    if (!existsSync(join(model, 'config.json'))) throw new Error(`--model: ${JSON.stringify(model)} is not a model directory (no config.json)`);
    for (const name of ['prompts.jsonl', 'prompts-eval.jsonl']) if (!existsSync(join(task, name))) throw new Error(`--task: ${JSON.stringify(task)} has no ${name}`);
    const prompts = resolve(f.prompts ?? join(task, 'prompts.jsonl'));
    if (!existsSync(prompts)) throw new Error(`--prompts: ${JSON.stringify(prompts)} does not exist`);
    const filters = f.filters.map((x) => {
      if (x !== 'all' && x !== 'failed') throw new Error(`--filters: got ${JSON.stringify(x)}, expected 'all' or 'failed'`);
      return x;
    });
    if (filters.length === 0) throw new Error("--filters: empty, expected 'all', 'failed' or both");
    const seeds = parseSeeds(f.seeds);
    return { model, task, prompts, seeds, filters, steps: f.steps, learningRate: f.learningRate, groupSize: f.groupSize, kl: f.kl, evalPrompts: f.eval, json: f.json };
  } catch (e) {
    console.error(`bench:grpo-prompts: ${(e as Error).message}`);
    process.exit(2);
  }
}
const flags = readFlags();
const { model, task, seeds } = flags;
const settings = { ...demoGrpo, steps: flags.steps, learningRate: flags.learningRate, groupSize: flags.groupSize, klCoefficient: flags.kl };
const logger = createLogger({ service: 'bench', level: 'warn' });

const launch: ServiceLauncher = async (specs) => {
  const started = await Promise.all(specs.map((s) => startService(s.name, s.args)));
  return { addresses: started.map((s) => s.address), stop: async () => void (await Promise.all(started.map((s) => s.kill()))) };
};

/** Greedy completion with the model in `dir`, passed to `use` and disposed after it. */
async function withGreedy<T>(dir: string, use: (complete: CompleteFn) => Promise<T>): Promise<T> {
  const m = await loadModel(dir);
  try {
    return await use(modelCompleteFn(m, await loadTokenizer(dir), { maxNewTokens: settings.maxNewTokens, temperature: 0 }));
  } finally {
    m.dispose();
  }
}

async function correctOf(complete: CompleteFn, items: readonly AnswerItem[]): Promise<boolean[]> {
  const answers = await evaluateAnswers(items, complete);
  return answers.samples.map((s) => (s.components[CORRECT_COMPONENT] ?? 0) > 0);
}

/** A problem's key in a prompts file: the numbers its user message poses, and its answer ("Compute 13+55." -> "13 55 = 68"). */
function problemKey(item: AnswerItem): string {
  const text = typeof item.prompt === 'string' ? item.prompt : item.prompt.map((m) => m.content).join(' ');
  return `${(text.match(/\d+/g) ?? []).join(' ')} = ${item.answer}`;
}

/**
 * The RL prompts file the runs read: --prompts less every prompt that poses a
 * held-out problem of --task, its lines written to `to` byte for byte (writeSelectedLines); returns the counts.
 */
async function withoutHeldOut(from: string, heldOut: readonly AnswerItem[], to: string): Promise<{ kept: number; dropped: number }> {
  const pool = await readEvalData(from);
  if (pool.kind !== 'answers') throw new Error(`--prompts: ${from} must hold prompts with answers (a "prompt" and an "answer" on each line)`);
  const keys = new Set(heldOut.map(problemKey));
  const kept = pool.items.filter((it) => !keys.has(problemKey(it)));
  await writeSelectedLines(from, kept.map((it) => it.line), to);
  return { kept: kept.length, dropped: pool.items.length - kept.length };
}

interface Row {
  filter: Filter;
  seed: number;
  prompts: number;
  accuracy: number;
  gain: number;
  gainStderr: number;
  fixed: number;
  broken: number;
  klEnd: number;
  seconds: number;
}

async function main(): Promise<void> {
  await initBackend({ logger });
  const out = await mkdtemp(join(tmpdir(), 'posttrain-bench-grpo-prompts-'));
  const evalData = await readEvalData(join(task, 'prompts-eval.jsonl'));
  if (evalData.kind !== 'answers') throw new Error(`--task: prompts-eval.jsonl must hold prompts with answers`);
  const evalItems = evalData.items.slice(0, flags.evalPrompts);
  const promptsFile = join(out, 'prompts.jsonl');
  const failedFile = join(out, 'failed-prompts.jsonl');
  const rows: Row[] = [];
  try {
    const pool = await withoutHeldOut(flags.prompts, evalData.items, promptsFile);
    if (pool.kept === 0) throw new Error(`--prompts: every prompt of ${flags.prompts} poses a held-out problem of --task`);
    if (!flags.json) process.stderr.write(`RL prompts: ${pool.kept} of ${flags.prompts} (${pool.dropped} posing held-out problems dropped)\n`);
    const { start, failed } = await withGreedy(model, async (complete) => ({
      start: await correctOf(complete, evalItems),
      failed: await writeFailedPrompts(promptsFile, complete, failedFile, { want: settings.steps * settings.promptsPerStep }),
    }));
    if (!failed.written) throw new Error(`--model answers every one of the ${failed.scanned} RL prompts right; there is nothing to filter to`);
    if (!flags.json) process.stderr.write(`start model: ${(100 * start.filter(Boolean).length / start.length).toFixed(1)}% of ${start.length} held-out prompts; ${failed.lines.length} failed RL prompts in the first ${failed.scanned}\n`);
    for (const filter of flags.filters) {
      for (const seed of seeds) {
        const t0 = performance.now();
        const runId = `grpo-${filter}-seed${seed}`;
        const run = await runRlStage({ runId, outputDir: out, modelDir: model, promptsFile: filter === 'failed' ? failedFile : promptsFile, seed, launch, logger, algorithm: 'grpo', settings: { ...settings, promptFilter: filter } });
        const seconds = (performance.now() - t0) / 1000;
        const after = await withGreedy(run.modelDir, (complete) => correctOf(complete, evalItems));
        const gain = pairedDifference(after, start);
        const row: Row = {
          filter,
          seed,
          prompts: filter === 'failed' ? failed.lines.length : failed.pool,
          accuracy: after.filter(Boolean).length / after.length,
          gain: gain.value,
          gainStderr: gain.stderr,
          fixed: after.filter((c, i) => c && !start[i]).length,
          broken: after.filter((c, i) => !c && start[i]).length,
          klEnd: run.points[run.points.length - 1].kl,
          seconds,
        };
        rows.push(row);
        if (!flags.json) process.stderr.write(`  ${runId}: ${(100 * row.accuracy).toFixed(1)}%, gain ${(100 * row.gain).toFixed(1)} ± ${(100 * row.gainStderr).toFixed(1)} pts (${seconds.toFixed(0)} s)\n`);
      }
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  const summary = flags.filters.map((filter) => {
    const g = rows.filter((r) => r.filter === filter).map((r) => r.gain);
    const mean = g.reduce((a, x) => a + x, 0) / g.length;
    const sd = g.length > 1 ? Math.sqrt(g.reduce((a, x) => a + (x - mean) ** 2, 0) / (g.length - 1)) : Number.NaN;
    return { filter, meanGain: mean, seedStderr: sd / Math.sqrt(g.length) };
  });
  if (flags.json) {
    process.stdout.write(JSON.stringify({ model, task, settings, evalPrompts: flags.evalPrompts, rows, summary }) + '\n');
    return;
  }
  const cell = (cells: (string | number)[]) => cells.map((c) => String(c).padStart(12)).join('');
  console.log(cell(['prompts', 'seed', 'accuracy', 'gain pts', '± SE', 'fixed', 'broken', 'KL end', 'seconds']));
  for (const r of rows) console.log(cell([`${r.filter} (${r.prompts})`, r.seed, `${(100 * r.accuracy).toFixed(1)}%`, (100 * r.gain).toFixed(1), (100 * r.gainStderr).toFixed(1), r.fixed, r.broken, r.klEnd.toFixed(3), r.seconds.toFixed(0)]));
  for (const s of summary) console.log(`${s.filter}: mean gain ${(100 * s.meanGain).toFixed(1)}${seeds.length > 1 ? ` ± ${(100 * s.seedStderr).toFixed(1)} pts over ${seeds.length} seeds (SE across seeds)` : ' pts (one seed: no spread across seeds)'}`);
}

main().catch((e: Error) => {
  console.error(`bench:grpo-prompts: ${e.message}`);
  process.exit(1);
});
