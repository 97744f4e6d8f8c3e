import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadNativeKernels } from '@posttrain/native-kernels';
import { describeBackend, initBackend, getBackendInfo, parseBackendName, type BackendInfo } from './index';

const quiet = { info: () => undefined };
const savedEnv = process.env.POSTTRAIN_BACKEND;

/** Runs initBackend in a fresh process (selection is once per process) and returns its BackendInfo. */
/** OPENBLAS_CORETYPE as the test runner's environment gave it, before any addon load in this process. */
const INHERITED_CORETYPE = process.env.OPENBLAS_CORETYPE;

function initInChild(env: Record<string, string>, options = '{ logger: { info: () => {} } }'): { info?: BackendInfo; stderr: string; status: number | null } {
  const index = join(__dirname, 'index.ts');
  const code =
    `require(${JSON.stringify(index)}).initBackend(${options})` +
    `.then((i) => { process.stdout.write(JSON.stringify(i)); }, (e) => { process.stderr.write('ERR ' + e.message); process.exitCode = 3; });`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { info: r.status === 0 ? (JSON.parse(r.stdout) as BackendInfo) : undefined, stderr: r.stderr, status: r.status };
}

describe('parseBackendName', () => {
  test('accepts the names and aliases, case-insensitively', () => {
    assert.equal(parseBackendName('gpu'), 'tensorflow-gpu');
    assert.equal(parseBackendName('TensorFlow-GPU'), 'tensorflow-gpu');
    assert.equal(parseBackendName(' node '), 'tensorflow');
    assert.equal(parseBackendName('tfjs-node'), 'tensorflow');
    assert.equal(parseBackendName('wasm'), 'wasm');
    assert.equal(parseBackendName('cpu'), 'cpu');
    assert.equal(parseBackendName(''), 'auto');
  });
  test('rejects anything else, naming the source, the value and the valid values', () => {
    assert.throws(
      () => parseBackendName('webgl', 'POSTTRAIN_BACKEND'),
      /^Error: POSTTRAIN_BACKEND: got "webgl", expected one of auto, tensorflow-gpu \(aliases gpu, tfjs-node-gpu\), tensorflow \(aliases node, tfjs-node\), wasm, cpu$/,
    );
    assert.throws(() => parseBackendName('constructor'), /got "constructor"/);
  });
});

describe('initBackend selection', () => {
  afterEach(() => {
    if (savedEnv === undefined) delete process.env.POSTTRAIN_BACKEND;
    else process.env.POSTTRAIN_BACKEND = savedEnv;
  });

  test('an unknown POSTTRAIN_BACKEND is rejected with the valid values', async () => {
    process.env.POSTTRAIN_BACKEND = 'tpu';
    await assert.rejects(initBackend({ logger: quiet }), /POSTTRAIN_BACKEND: got "tpu", expected one of auto, tensorflow-gpu/);
  });

  test('a named backend that is not installed is an error, not a fallback', async () => {
    process.env.POSTTRAIN_BACKEND = 'tensorflow';
    await assert.rejects(
      initBackend({ logger: quiet }),
      /^Error: POSTTRAIN_BACKEND: backend "tensorflow" cannot be used: @tensorflow\/tfjs-node is not installed/,
    );
    process.env.POSTTRAIN_BACKEND = 'gpu';
    await assert.rejects(initBackend({ logger: quiet }), /backend "tensorflow-gpu" cannot be used: @tensorflow\/tfjs-node-gpu is not installed/);
  });

  test('options.patches must be a boolean', async () => {
    await assert.rejects(
      initBackend({ backend: 'wasm', patches: 'yes' as unknown as boolean, logger: quiet }),
      /initBackend options\.patches: got "yes", expected true or false/,
    );
  });

  test('the default logger writes one JSON line to stderr at info level, nothing when silent (fresh processes)', () => {
    const loud = initInChild({ POSTTRAIN_BACKEND: 'cpu', POSTTRAIN_LOG_LEVEL: 'info' }, '{}');
    assert.equal(loud.status, 0, loud.stderr);
    const line = loud.stderr.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, `no JSON log line in: ${loud.stderr}`);
    const record = JSON.parse(line) as { level: string; msg: string; backend: BackendInfo };
    assert.equal(record.level, 'info');
    assert.equal(record.msg, 'tfjs backend selected');
    assert.equal(record.backend.name, 'cpu');
    const silent = initInChild({ POSTTRAIN_BACKEND: 'cpu', POSTTRAIN_LOG_LEVEL: 'silent' }, '{}');
    assert.equal(silent.status, 0, silent.stderr);
    assert.ok(!silent.stderr.includes('tfjs backend selected'), silent.stderr);
  });

  test('a package that is present but broken is reported as such', async () => {
    const requireModule = (id: string): unknown => {
      throw new Error(`libtensorflow.so: cannot open shared object file (loading ${id})`);
    };
    await assert.rejects(
      initBackend({ backend: 'node', logger: quiet, requireModule }),
      /initBackend options\.backend: backend "tensorflow" cannot be used: @tensorflow\/tfjs-node is installed but failed to load: libtensorflow\.so/,
    );
  });

  test('a package that registers no backend with this tfjs-core is reported', async () => {
    await assert.rejects(
      initBackend({ backend: 'tensorflow', logger: quiet, requireModule: () => ({}) }),
      /registered no 'tensorflow' backend with this copy of @tensorflow\/tfjs-core/,
    );
  });

  test('auto falls through absent tfjs-node-gpu and tfjs-node to wasm, logs it, and is idempotent', async () => {
    delete process.env.POSTTRAIN_BACKEND;
    const logged: { msg: string; fields?: Record<string, unknown> }[] = [];
    const info = await initBackend({ logger: { info: (msg, fields) => logged.push({ msg, fields }) } });
    assert.equal(info.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(info.requested, 'auto');
    assert.equal(info.requestSource, 'default');
    assert.deepEqual(info.skipped.map((s) => s.name), ['tensorflow-gpu', 'tensorflow']);
    assert.match(info.skipped[0].reason, /@tensorflow\/tfjs-node-gpu is not installed/);
    assert.match(info.skipped[1].reason, /@tensorflow\/tfjs-node is not installed/);
    assert.equal(info.version, '4.22.0');
    assert.equal(info.simd, true, 'Node 20 supports wasm SIMD');
    assert.equal(info.threads, 1, 'tfjs disables the threaded wasm build in Node');
    const native = loadNativeKernels().addon !== null;
    assert.equal(info.native.active, native, info.native.reason);
    assert.deepEqual(info.patches, [
      'batch-mat-mul-kernel', 'batch-mat-mul-gradient', 'unsorted-segment-sum-kernel', 'identity-shares-buffer', 'equal-last-axis-kernel', 'gather-rows-kernel',
      ...(native ? ['native-batch-mat-mul', 'native-adamw', 'native-rms-norm', 'native-decode-attention', 'native-swiglu'] : []),
    ]);
    assert.equal(logged.length, 1);
    assert.equal(logged[0].msg, 'tfjs backend selected');
    assert.deepEqual(logged[0].fields, { backend: info, summary: describeBackend(info) });
    assert.deepEqual(getBackendInfo(), info);

    const again = await initBackend({ logger: quiet });
    assert.equal(again, info, 'the same result object');
    await assert.rejects(initBackend({ backend: 'cpu', logger: quiet }), /already initialised as auto\|patches=true; cannot switch to cpu\|patches=true/);
  });

  test('POSTTRAIN_BACKEND=cpu selects the plain JavaScript backend (fresh process)', () => {
    const r = initInChild({ POSTTRAIN_BACKEND: 'cpu', POSTTRAIN_LOG_LEVEL: 'silent' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.info?.name, 'cpu');
    assert.equal(r.info?.tfjsBackend, 'cpu');
    assert.equal(r.info?.requestSource, 'env');
    assert.deepEqual(r.info?.patches, []);
    assert.deepEqual(r.info?.skipped, []);
  });

  test('options.backend wins over POSTTRAIN_BACKEND (fresh process)', () => {
    const r = initInChild({ POSTTRAIN_BACKEND: 'cpu' }, "{ backend: 'wasm', logger: { info: () => {} } }");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.info?.name, 'wasm');
    assert.equal(r.info?.requestSource, 'option');
  });

  test('POSTTRAIN_NATIVE=0 runs plain wasm and says so (fresh process)', () => {
    const r = initInChild({ POSTTRAIN_NATIVE: '0', POSTTRAIN_BACKEND: 'wasm' });
    assert.equal(r.status, 0, r.stderr);
    const info = r.info!;
    assert.deepEqual(info.native, { active: false, reason: 'disabled by POSTTRAIN_NATIVE=0', blas: null, config: null, kernels: null, threads: null });
    assert.deepEqual(info.patches, ['batch-mat-mul-kernel', 'batch-mat-mul-gradient', 'unsorted-segment-sum-kernel', 'identity-shares-buffer', 'equal-last-axis-kernel', 'gather-rows-kernel']);
    assert.equal(describeBackend(info), 'wasm (tfjs 4.22.0, 1 thread), plain: disabled by POSTTRAIN_NATIVE=0');
  });

  test('with the addon built, wasm runs the native kernels with POSTTRAIN_BLAS_THREADS threads (fresh process)', (t) => {
    if (loadNativeKernels().addon === null && process.env.POSTTRAIN_NATIVE !== '1') return t.skip('native addon absent');
    // OPENBLAS_CORETYPE '' (unset): the kernels the addon picks, whatever the caller's environment names.
    const r = initInChild({ POSTTRAIN_NATIVE: '1', POSTTRAIN_BACKEND: 'wasm', POSTTRAIN_BLAS_THREADS: '2', OPENBLAS_CORETYPE: '', POSTTRAIN_BLAS_CORETYPE: '' });
    assert.equal(r.status, 0, r.stderr);
    const info = r.info!;
    assert.equal(info.native.active, true, info.native.reason);
    assert.equal(info.native.reason, 'loaded');
    assert.match(info.native.blas ?? '', /^(OpenBLAS|Accelerate)$/);
    if (info.native.blas === 'OpenBLAS') assert.equal(info.native.threads, 2);
    assert.match(describeBackend(info), /^wasm \(tfjs 4\.22\.0, 1 thread\) \+ native (OpenBLAS \((\w+ kernels(, pinned)?, )?2 threads\)|Accelerate \(system threads\))$/);
    const bad = initInChild({ POSTTRAIN_BACKEND: 'wasm', POSTTRAIN_BLAS_THREADS: 'many' });
    assert.equal(bad.status, 3);
    assert.match(bad.stderr, /POSTTRAIN_BLAS_THREADS: got "many", expected an integer from 1 to 1024/);
  });

  test('OpenBLAS loads the Haswell kernels on x86-64 with AVX2 and FMA unless told otherwise, and says which ran (fresh processes)', (t) => {
    const { addon, status } = loadNativeKernels();
    if ((addon === null && process.env.POSTTRAIN_NATIVE !== '1') || status.blas !== 'OpenBLAS') return t.skip('no OpenBLAS addon');
    const cpuinfo = process.arch === 'x64' ? readFileSync('/proc/cpuinfo', 'utf8') : '';
    const avx2 = /^flags\s*:.*\bavx2\b/m.test(cpuinfo) && /^flags\s*:.*\bfma\b/m.test(cpuinfo);
    const env = { POSTTRAIN_NATIVE: '1', POSTTRAIN_BACKEND: 'wasm', OPENBLAS_CORETYPE: '', POSTTRAIN_BLAS_CORETYPE: '' };
    const pinned = initInChild(env).info!.native;
    if (avx2) {
      assert.deepEqual(pinned.kernels, { core: 'Haswell', source: 'pinned' });
      assert.match(pinned.config ?? '', /\bHaswell\b/);
    } else assert.equal(pinned.kernels?.source, 'auto');
    // This process's own load did not leave OPENBLAS_CORETYPE behind for the processes it starts
    // (it is what the environment gave the test runner: unset, or the caller's own choice).
    assert.equal(process.env.OPENBLAS_CORETYPE, INHERITED_CORETYPE);
    const auto = initInChild({ ...env, POSTTRAIN_BLAS_CORETYPE: 'auto' }).info!.native;
    assert.equal(auto.kernels?.source, 'auto');
    if (avx2) {
      // Named explicitly, by either variable; Sandybridge (AVX) runs wherever Haswell does.
      assert.deepEqual(initInChild({ ...env, POSTTRAIN_BLAS_CORETYPE: 'Sandybridge' }).info!.native.kernels, { core: 'Sandybridge', source: 'pinned' });
      assert.deepEqual(initInChild({ ...env, OPENBLAS_CORETYPE: 'Sandybridge' }).info!.native.kernels, { core: 'Sandybridge', source: 'OPENBLAS_CORETYPE' });
    }
    const bad = initInChild({ ...env, POSTTRAIN_BLAS_CORETYPE: 'no such/core' });
    assert.equal(bad.status, 3);
    assert.match(bad.stderr, /POSTTRAIN_BLAS_CORETYPE: got "no such\/core", expected 'auto' or an OpenBLAS core type such as Haswell/);
  });
});
