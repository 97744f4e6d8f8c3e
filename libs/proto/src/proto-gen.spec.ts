// The contracts lint clean, the checked-in generated code is current, and
// `tools/proto-gen.mjs --check` notices a stale, missing or extra file. The
// staleness cases run against temp copies; the real src/gen is only read.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..', '..');
const genDir = join(__dirname, 'gen');

function run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function check(dir?: string): { status: number | null; stdout: string; stderr: string } {
  return run(process.execPath, ['tools/proto-gen.mjs', '--check', ...(dir ? ['--gen-dir', dir] : [])]);
}

test('buf lint passes (STANDARD + COMMENTS)', () => {
  const r = run(join(root, 'node_modules', '.bin', 'buf'), ['lint']);
  assert.equal(r.status, 0, `buf lint failed:\n${r.stdout}${r.stderr}`);
});

test('the checked-in generated code is what the protos produce', () => {
  const r = check();
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /is up to date with protos\//);
});

describe('--check on a stale copy', () => {
  let tmp = '';
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'posttrain-proto-spec-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  function copyGen(name: string): string {
    const dir = join(tmp, name);
    cpSync(genDir, dir, { recursive: true });
    return dir;
  }

  test('an unmodified copy passes', () => {
    assert.equal(check(copyGen('same')).status, 0);
  });

  test('a hand-edited file is reported as stale with exit 1', () => {
    const dir = copyGen('edited');
    appendFileSync(join(dir, 'posttrain', 'v1', 'tensor.ts'), '\n// hand edit\n');
    const r = check(dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is stale/);
    assert.match(r.stderr, /stale: {3}posttrain\/v1\/tensor\.ts \(content differs\)/);
    assert.match(r.stderr, /npm run gen/);
    assert.doesNotMatch(r.stderr, /trainer\.ts/);
  });

  test('a deleted file is reported missing and a leftover file extra', () => {
    const dir = copyGen('missing');
    rmSync(join(dir, 'posttrain', 'v1', 'trainer.ts'));
    writeFileSync(join(dir, 'posttrain', 'v1', 'old_service.ts'), '// from a removed proto\n');
    const r = check(dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /missing: posttrain\/v1\/trainer\.ts/);
    assert.match(r.stderr, /extra: {3}posttrain\/v1\/old_service\.ts/);
  });

  test('bad usage exits 2 with a message', () => {
    const r = run(process.execPath, ['tools/proto-gen.mjs', '--frobnicate']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown argument "--frobnicate"/);
  });
});
