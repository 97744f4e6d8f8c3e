import { statSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import { parseTaskOptions, writeTaskFiles, type TaskOptions } from '@posttrain/task';
import { UsageError, type Command } from '../command';

const options = defineConfig({
  out: { kind: 'string', flag: 'out', description: 'folder to write the files and manifest.json into (created if missing)', required: true },
  seed: { kind: 'int', flag: 'seed', description: 'seed of every random choice: same seed and sizes, same bytes', default: 0, min: 0 },
  sizes: { kind: 'list', flag: 'sizes', description: 'SFT sweep sizes, ascending, comma-separated; each file is a prefix of the next (default 100,300,1000,3000)' },
  coreSize: { kind: 'int', flag: 'core-size', description: 'one of --sizes: the SFT problems drawn before the other pools; larger sizes add theirs after, so every other file is what --sizes up to it would write (default: the largest size)' },
  corpus: { kind: 'int', flag: 'corpus', description: 'documents in the pretraining corpus (default 20000)' },
  preference: { kind: 'int', flag: 'preference', description: 'preference pairs for DPO / reward model (default 2000)' },
  prompts: { kind: 'int', flag: 'prompts', description: 'RL prompts with answers for GRPO / PPO (default 2000)' },
  eval: { kind: 'int', flag: 'eval', description: 'held-out problems, posed in every *-eval file (default 300)' },
  ops: { kind: 'list', flag: 'ops', description: 'operations, comma-separated, of add, sub, mul (default all)' },
  minDigits: { kind: 'int', flag: 'min-digits', description: 'fewest digits of an operand (default 2)' },
  maxDigits: { kind: 'int', flag: 'max-digits', description: 'most digits of an operand (default 3)' },
  json: { kind: 'bool', flag: 'json', description: 'print the manifest as JSON instead of a table', default: false },
});

/** Task option -> the flag that sets it, so validation errors point at what the user typed. */
const FLAG_OF: Readonly<Record<keyof TaskOptions, string>> = {
  seed: '--seed',
  operations: '--ops',
  minDigits: '--min-digits',
  maxDigits: '--max-digits',
  sftSizes: '--sizes',
  sftCoreSize: '--core-size',
  corpusSize: '--corpus',
  preferenceSize: '--preference',
  promptsSize: '--prompts',
  evalSize: '--eval',
};

function sizesFrom(list: readonly string[]): number[] {
  return list.map((s, i) => {
    const n = Number(s);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(n)) throw new UsageError(`--sizes: entry ${i + 1} is "${s}", expected a positive integer (e.g. --sizes 100,300,1000)`);
    return n;
  });
}

/** `posttrain task generate --out DIR`: writes the embedded task's datasets and their manifest. */
export const taskGenerateCommand: Command = {
  name: 'task generate',
  summary: 'generate the embedded arithmetic task: corpus, SFT sweep, preference pairs, RL prompts, held-out splits',
  help: () =>
    `usage: posttrain task generate --out DIR [options]\n\nWrites, deterministically from --seed, the data of the demo's and the experiments' task (2-3 digit\narithmetic with worked column steps):\n  corpus.jsonl          {"text"} prose to pretrain the tiny base model (no chat turns, no "Answer:" line)\n  sft-N.jsonl           {"messages"} chat SFT data with worked answers, one file per --sizes entry;\n                        half the replies direct ("To add ..."), half friendly ("Sure! To add ...")\n  preference.jsonl      {"prompt","chosen","rejected"} style pairs: the same right reply, the chosen one\n                        in the preferred friendly style (reward model, DPO, PPO)\n  preference-correct.jsonl  {"prompt","chosen","rejected"} a right reply and a plausible wrong one\n  prompts.jsonl         {"prompt","answer"} prompts with verifiable answers for GRPO / PPO\n  prose-eval.jsonl      {"prompt","answer"} plain-text prompts ("To add 45 and 13:") for the base model\n  *-eval.jsonl          the others on held-out problems that no training file contains\n  manifest.json         options, record counts, sha256 of every file, the reward spec\n\nOptions:\n${describeConfig(options)}\n`,
  run: async (argv, io) => {
    const opts = parseConfig(options, { argv });
    try {
      if (!statSync(opts.out).isDirectory()) throw new UsageError(`--out: ${opts.out} exists and is not a folder`);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      // Missing: writeTaskFiles creates it.
    }
    const raw: Record<string, unknown> = { seed: opts.seed };
    if (opts.sizes !== undefined) raw.sftSizes = sizesFrom(opts.sizes);
    if (opts.coreSize !== undefined) raw.sftCoreSize = opts.coreSize;
    if (opts.corpus !== undefined) raw.corpusSize = opts.corpus;
    if (opts.preference !== undefined) raw.preferenceSize = opts.preference;
    if (opts.prompts !== undefined) raw.promptsSize = opts.prompts;
    if (opts.eval !== undefined) raw.evalSize = opts.eval;
    if (opts.ops !== undefined) raw.operations = opts.ops;
    if (opts.minDigits !== undefined) raw.minDigits = opts.minDigits;
    if (opts.maxDigits !== undefined) raw.maxDigits = opts.maxDigits;
    let taskOptions: TaskOptions;
    try {
      taskOptions = parseTaskOptions(raw, 'task');
    } catch (err) {
      // "task.sftSizes[1]: got 100, ..." -> "--sizes[1]: got 100, ..."
      const message = (err as Error).message.replace(/^task\.(\w+)/, (_m, key: string) => FLAG_OF[key as keyof TaskOptions] ?? key);
      throw new UsageError(message);
    }
    const manifest = await writeTaskFiles(opts.out, taskOptions);
    if (opts.json) {
      io.stdout.write(JSON.stringify(manifest) + '\n');
      return 0;
    }
    const width = Math.max(...manifest.files.map((f) => f.name.length));
    io.stdout.write(`task written to ${opts.out} (seed ${manifest.seed})\n`);
    for (const f of manifest.files) io.stdout.write(`  ${f.name.padEnd(width)}  ${f.split.padEnd(5)}  ${String(f.records).padStart(6)} records  ${f.sha256.slice(0, 12)}\n`);
    io.stdout.write(`  manifest: ${join(opts.out, 'manifest.json')}\n`);
    return 0;
  },
};
