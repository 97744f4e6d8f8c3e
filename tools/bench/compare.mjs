#!/usr/bin/env node
// npm run bench:compare [-- --threads 1,2 --steps 5]
// posttrain's `model bench` (native kernels and, in the same process, plain
// wasm) against the PyTorch twin (tools/bench/torch_bench.py) on the same
// shape, training step and greedy KV-cache decode loop. PyTorch runs before
// and after posttrain and its figures are the mean of the two, so a change in
// the machine's load during the run shows up as a spread and cancels in part.
// Needs /usr/bin/python3 with torch (Debian: apt-get install python3-torch).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const threads = opt('threads', '1').split(',').map(Number);
const steps = opt('steps', '5');
if (threads.some((t) => !Number.isInteger(t) || t < 1)) throw new Error(`--threads: got "${opt('threads')}", expected e.g. 1,2`);
const python = process.env.POSTTRAIN_TORCH_PYTHON ?? '/usr/bin/python3';

if (!existsSync(python) || spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) {
  console.error(`bench:compare: ${python} has no torch (Debian: apt-get install python3-torch); nothing to compare against`);
  process.exit(2);
}

function runJson(cmd, argv, env = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', env: { ...process.env, POSTTRAIN_LOG_LEVEL: 'warn', ...env }, maxBuffer: 1 << 26 });
  const line = (r.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (r.status !== 0 || line === undefined) {
    throw new Error(`${cmd} ${argv.join(' ')} failed (exit ${r.status}): ${(r.stderr ?? '').slice(-2000)}`);
  }
  return JSON.parse(line);
}

const torchRun = (t) => runJson(python, [join(root, 'tools/bench/torch_bench.py'), '--threads', String(t), '--steps', steps]);
const fmt = (x) => x.toFixed(0).padStart(7);
const ratio = (a, b) => `${(a / b).toFixed(2)}x`.padStart(7);

const summary = [];
for (const t of threads) {
  const before = torchRun(t);
  const ours = runJson(process.execPath, [join(root, 'bin/posttrain.js'), 'model', 'bench', '--json', '--compare-native', '--steps', steps, ...(t > 1 || threads.length > 1 ? ['--threads', String(t)] : [])]);
  const after = torchRun(t);
  const torchTrain = (before.train.tokensPerSecond + after.train.tokensPerSecond) / 2;
  const n = ours.backend.native;
  console.log(`\n== ${t} thread(s): posttrain ${ours.backend.name} ${n.active ? `+ native ${n.blas} (${n.threads} BLAS thread(s))` : `plain (${n.reason})`}; PyTorch ${before.torch} (${before.threads} thread(s), runs before/after)`);
  console.log('                      posttrain   plain wasm   PyTorch   posttrain/PyTorch   plain/PyTorch');
  const plainTrain = ours.plainWasm?.train.tokensPerSecond;
  console.log(`train tokens/s         ${fmt(ours.train.tokensPerSecond)}      ${plainTrain ? fmt(plainTrain) : '      -'}   ${fmt(torchTrain)}             ${ratio(ours.train.tokensPerSecond, torchTrain)}         ${plainTrain ? ratio(plainTrain, torchTrain) : '      -'}   (PyTorch ${before.train.tokensPerSecond.toFixed(0)} / ${after.train.tokensPerSecond.toFixed(0)})`);
  const row = { threads: t, train: { posttrain: ours.train.tokensPerSecond, plainWasm: plainTrain ?? null, torch: torchTrain, ratio: ours.train.tokensPerSecond / torchTrain }, decode: [] };
  for (const d of ours.decode) {
    const tb = before.decode.find((x) => x.batch === d.batch);
    const ta = after.decode.find((x) => x.batch === d.batch);
    const torchRate = (tb.tokensPerSecond + ta.tokensPerSecond) / 2;
    const plain = ours.plainWasm?.decode.find((x) => x.batch === d.batch)?.tokensPerSecond;
    console.log(`decode batch ${String(d.batch).padEnd(2)} tok/s   ${fmt(d.tokensPerSecond)}      ${plain ? fmt(plain) : '      -'}   ${fmt(torchRate)}             ${ratio(d.tokensPerSecond, torchRate)}         ${plain ? ratio(plain, torchRate) : '      -'}   (PyTorch ${tb.tokensPerSecond.toFixed(0)} / ${ta.tokensPerSecond.toFixed(0)})`);
    row.decode.push({ batch: d.batch, posttrain: d.tokensPerSecond, plainWasm: plain ?? null, torch: torchRate, ratio: d.tokensPerSecond / torchRate });
  }
  summary.push(row);
}
console.log(`\n${JSON.stringify({ bench: 'compare', steps: Number(steps), results: summary })}`);
