#!/usr/bin/env node
// Builds the optional native addon (npm runs this as the package's install step).
// Never fails the install: when node-gyp, a compiler, the node headers or the
// BLAS is missing, it says so and posttrain runs on plain wasm. `--strict`
// (npm run build -w @posttrain/native-kernels) exits 1 instead.
// POSTTRAIN_NATIVE=0 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');
const buildDir = join(pkgDir, 'build');

function finish(ok, message, log = '') {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(join(buildDir, 'status.json'), JSON.stringify({ ok, message, at: new Date().toISOString() }, null, 2) + '\n');
  if (log) writeFileSync(join(buildDir, 'build.log'), log);
  const line = `@posttrain/native-kernels: ${message}`;
  if (ok) console.log(line);
  else console.warn(`${line}${log ? ` (log: ${join(buildDir, 'build.log')})` : ''}; posttrain will run on plain wasm`);
  process.exit(ok || !strict ? 0 : 1);
}

if (process.env.POSTTRAIN_NATIVE === '0') finish(false, 'build skipped (POSTTRAIN_NATIVE=0)');

const require = createRequire(join(pkgDir, 'package.json'));
let gyp = null;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  gyp = process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp) ? process.env.npm_config_node_gyp : null;
}
if (gyp === null) finish(false, 'node-gyp not found (neither installed nor provided by npm)');

// Build against the headers of the running node when it ships them
// (<prefix>/include/node), so no header download is needed offline.
const prefix = dirname(dirname(process.execPath));
const args = [gyp, 'rebuild'];
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

const r = spawnSync(process.execPath, args, { cwd: pkgDir, encoding: 'utf8', env: process.env });
const log = `$ node ${args.join(' ')}\n${r.stdout ?? ''}\n${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`;
if (r.status !== 0) {
  const blasMissing = /cblas\.h|lopenblas|Accelerate/.test(log);
  const reason = blasMissing
    ? 'build failed: the BLAS is missing (Debian/Ubuntu: apt-get install libopenblas-dev build-essential)'
    : `build failed (node-gyp exit ${r.status ?? r.error?.message})`;
  finish(false, reason, log);
}
finish(true, `built ${join('build', 'Release', 'posttrain_native.node')}`, log);
