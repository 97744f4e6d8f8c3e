#!/usr/bin/env node
// Runs the project's tests with node's own test runner, TypeScript loaded by tsx.
// `npm test` runs every *.spec.ts except *.slow.spec.ts; `npm run test:slow` runs those.
// Extra arguments are file filters: `npm test -- rpc` runs spec files whose path contains "rpc".
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const slow = args.includes('--slow');
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.spec.ts')) out.push(p);
  }
  return out;
}

const files = ['libs', 'services', 'tests']
  .flatMap((d) => (existsSync(join(root, d)) ? walk(join(root, d), []) : []))
  .filter((f) => f.endsWith('.slow.spec.ts') === slow)
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .map((f) => relative(root, f))
  .sort();

if (files.length === 0) {
  console.error(`no test files matched${filters.length ? ` ${filters.join(' ')}` : ''}`);
  process.exit(1);
}
const concurrency = process.env.POSTTRAIN_TEST_CONCURRENCY ?? '2';
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files],
  { stdio: 'inherit', cwd: root, env: { ...process.env, POSTTRAIN_LOG_LEVEL: process.env.POSTTRAIN_LOG_LEVEL ?? 'warn' } },
);
process.exit(r.status ?? 1);
