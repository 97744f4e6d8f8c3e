import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureIO } from '../test-io';
import { demoCommand, shippedBaseModelDir } from './demo';
import { experimentCommand } from './experiment';
import { runSeedProcesses, SeedProcessError, seedProcessArgs } from './seed-processes';

describe('experiment seeds as processes', () => {
  test('each seed runs `posttrain experiment` for itself alone, into OUT/seed-S', () => {
    assert.deepEqual(seedProcessArgs(2, { out: '/o', quick: true, dashboard: false, parallelStages: 1, fromScratch: false, baseModelDir: '/b' }), [
      'experiment', '--seeds', '2', '--jobs', '1', '--parallel-stages', '1', '--out', join('/o', 'seed-2'), '--quick', '--base-model', '/b', '--no-dashboard',
    ]);
    // The first seed of --from-scratch rebuilds the base itself and serves its dashboard.
    assert.deepEqual(seedProcessArgs(0, { out: '/o', quick: false, dashboard: true, parallelStages: 3, fromScratch: true, baseModelDir: null }), ['experiment', '--seeds', '0', '--jobs', '1', '--parallel-stages', '3', '--out', join('/o', 'seed-0'), '--from-scratch']);
  });

  test('a seed whose process fails stops the run with an error naming the seed and its exit code; its output is relayed with the seed', async () => {
    const out = mkdtempSync(join(tmpdir(), 'seeds-'));
    // seed-7 already holds a file: that seed's process refuses its --out (exit code 2).
    mkdirSync(join(out, 'seed-7'));
    writeFileSync(join(out, 'seed-7', 'keep.txt'), 'x');
    const io = captureIO();
    await assert.rejects(
      runSeedProcesses({ seeds: [7], jobs: 2, parallelStages: 1, out, quick: true, fromScratch: false, baseModelDir: shippedBaseModelDir(), dashboard: false, io, signal: new AbortController().signal }),
      (e: unknown) => e instanceof SeedProcessError && e.seed === 7 && e.code === 2 && /seed 7: its process exited with code 2/.test(e.message),
    );
    assert.match(io.err(), /^\[seed 7\] posttrain experiment: --out: .*seed-7 already exists and is not empty/m);
  });

  test('aborting asks every running seed to stop at its next step boundary: cancelled, nothing pooled', async () => {
    const out = mkdtempSync(join(tmpdir(), 'seeds-'));
    const io = captureIO();
    const ac = new AbortController();
    // Abort once both seeds are training (their first SFT stage has begun).
    const timer = setInterval(() => {
      if ((io.err().match(/\] \[\d+\/\d+\] sft-/g) ?? []).length >= 2) ac.abort();
    }, 100);
    try {
      const got = await runSeedProcesses({ seeds: [0, 1], jobs: 2, parallelStages: 1, out, quick: true, fromScratch: false, baseModelDir: shippedBaseModelDir(), dashboard: false, io, signal: ac.signal });
      assert.equal(got, 'cancelled');
    } finally {
      clearInterval(timer);
    }
    assert.match(io.err(), /\[seed 0\] .*stopping at the next step boundary|\[seed 0\] posttrain experiment: .*finished stages are kept/);
    assert.match(io.err(), /\[seed 1\] /);
  });

  test('--jobs is for the experiment, and one dashboard port cannot serve parallel seeds', async () => {
    const io = captureIO();
    await assert.rejects(demoCommand.run(['--quick', '--jobs', '2'], io), /--jobs: got 2, but the demo runs one seed/);
    await assert.rejects(experimentCommand.run(['--quick', '--seeds', '0,1', '--dashboard-port', '8099'], io), /--dashboard-port: got 8099 with 2 seeds at once/);
    await assert.rejects(experimentCommand.run(['--quick', '--jobs', '0'], io), /jobs/);
  });
});
