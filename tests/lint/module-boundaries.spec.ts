import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

// The architecture as a lint error: run ESLint on source given on stdin as if
// it were a file at the given path, so nothing is written into the tree.
const root = join(__dirname, '..', '..');
const eslint = join(root, 'node_modules', '.bin', 'eslint');

function lintAs(path: string, source: string): { code: number | null; out: string } {
  spawnSync(join(root, 'node_modules', '.bin', 'nx'), ['show', 'projects'], { cwd: root, env: { ...process.env, NX_DAEMON: 'false' } });
  const r = spawnSync(eslint, ['--stdin', '--stdin-filename', path, '--max-warnings', '0'], { cwd: root, input: source, encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('module boundaries', { timeout: 120_000 }, () => {
  test('a service importing another service fails lint', () => {
    const r = lintAs('services/reward/src/probe.ts', "import { referenceService } from '@posttrain/svc-reference';\nexport const x = referenceService;\n");
    assert.notEqual(r.code, 0);
    assert.match(r.out, /@nx\/enforce-module-boundaries/);
  });

  test('a library importing a service fails lint', () => {
    const r = lintAs('libs/rpc/src/probe.ts', "import { trainerService } from '@posttrain/svc-trainer';\nexport const x = trainerService;\n");
    assert.notEqual(r.code, 0);
    assert.match(r.out, /@nx\/enforce-module-boundaries/);
  });

  test('reaching into generated code from outside libs/proto fails lint', () => {
    const r = lintAs('services/reward/src/probe.ts', "import { Tensor } from '@posttrain/proto/src/gen/posttrain/v1/tensor';\nexport const x = Tensor;\n");
    assert.notEqual(r.code, 0);
    assert.match(r.out, /no-restricted-imports/);
  });

  test('a service importing libraries through their index passes', () => {
    const r = lintAs('services/reward/src/probe.ts', "import { createClient } from '@posttrain/rpc';\nexport const x = createClient;\n");
    assert.equal(r.code, 0, r.out);
  });
});
