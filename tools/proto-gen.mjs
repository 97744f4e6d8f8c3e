#!/usr/bin/env node
// Regenerates libs/proto/src/gen from protos/ (buf lint, then buf generate with
// buf.gen.yaml), or with --check verifies that the checked-in output is what
// the protos produce, without touching it.
//
//   node tools/proto-gen.mjs                 lint + regenerate libs/proto/src/gen
//   node tools/proto-gen.mjs --check         lint + generate into a temp dir and compare;
//                                            exit 1 listing stale, missing and extra files
//   node tools/proto-gen.mjs --check --gen-dir <dir>
//                                            compare against <dir> instead (used by tests)
//
// Exit codes: 0 ok, 1 stale output (--check), 2 lint or generation failure or bad usage.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const GEN_DIR = 'libs/proto/src/gen'; // must match `out` in buf.gen.yaml

function parseArgs(argv) {
  const opts = { check: false, genDir: join(root, GEN_DIR) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') opts.check = true;
    else if (a === '--gen-dir') {
      const v = argv[++i];
      if (v === undefined) fail(`--gen-dir needs a directory argument`);
      opts.genDir = resolve(v);
    } else if (a === '--help' || a === '-h') {
      console.log('usage: node tools/proto-gen.mjs [--check [--gen-dir <dir>]]');
      process.exit(0);
    } else fail(`unknown argument ${JSON.stringify(a)}; expected --check, --gen-dir <dir> or --help`);
  }
  if (!opts.check && opts.genDir !== join(root, GEN_DIR)) fail('--gen-dir is only valid with --check');
  return opts;
}

function fail(message) {
  console.error(`proto-gen: ${message}`);
  process.exit(2);
}

function buf(args) {
  const bin = join(root, 'node_modules', '.bin', 'buf');
  if (!existsSync(bin)) fail(`buf not found at ${relative(root, bin)}; install devDependencies (@bufbuild/buf)`);
  const r = spawnSync(bin, args, { cwd: root, encoding: 'utf8' });
  if (r.error) fail(`could not run buf ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    process.stderr.write(r.stdout);
    process.stderr.write(r.stderr);
    fail(`buf ${args.join(' ')} failed (exit ${r.status})`);
  }
}

function listFiles(dir, base = dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) listFiles(p, base, out);
    else out.push(relative(base, p));
  }
  return out.sort();
}

/** Compares two directory trees file by file; returns the differences. */
function compareTrees(expectedDir, actualDir) {
  const expected = listFiles(expectedDir);
  const actual = new Set(listFiles(actualDir));
  const stale = [];
  const missing = [];
  for (const f of expected) {
    if (!actual.has(f)) missing.push(f);
    else if (!readFileSync(join(expectedDir, f)).equals(readFileSync(join(actualDir, f)))) stale.push(f);
    actual.delete(f);
  }
  return { stale, missing, extra: [...actual].sort() };
}

const opts = parseArgs(process.argv.slice(2));
buf(['lint']);

if (!opts.check) {
  buf(['generate']); // buf.gen.yaml has clean: true, so removed protos leave no files behind
  console.log(`proto-gen: regenerated ${GEN_DIR} (${listFiles(join(root, GEN_DIR)).length} files)`);
  process.exit(0);
}

const tmp = mkdtempSync(join(tmpdir(), 'posttrain-proto-gen-'));
let code = 0;
try {
  buf(['generate', '--output', tmp]);
  const { stale, missing, extra } = compareTrees(join(tmp, GEN_DIR), opts.genDir);
  const shown = relative(root, opts.genDir) || opts.genDir;
  if (stale.length + missing.length + extra.length === 0) {
    console.log(`proto-gen: ${shown} is up to date with protos/`);
  } else {
    const lines = [`proto-gen: ${shown} is stale: it differs from what protos/ generates.`];
    for (const f of stale) lines.push(`  stale:   ${f} (content differs)`);
    for (const f of missing) lines.push(`  missing: ${f} (generated but not checked in)`);
    for (const f of extra) lines.push(`  extra:   ${f} (checked in but no longer generated)`);
    lines.push('Run `npm run gen` and commit the result; never edit generated files by hand.');
    console.error(lines.join('\n'));
    code = 1;
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(code);
