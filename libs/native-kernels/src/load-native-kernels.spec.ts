import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelsFromConfig, pinKernels } from './load-native-kernels';

describe('pinKernels', () => {
  const avx2 = () => ['fpu', 'sse4_2', 'avx', 'avx2', 'fma', 'avx512f'];
  test('x86-64 with AVX2 and FMA: Haswell, written to OPENBLAS_CORETYPE for the load', () => {
    const env: NodeJS.ProcessEnv = {};
    assert.deepEqual(pinKernels(env, avx2, 'x64'), { coreType: 'Haswell', source: 'pinned' });
    assert.equal(env.OPENBLAS_CORETYPE, 'Haswell');
  });
  test("without AVX2 or FMA, on arm64, or with 'auto': OpenBLAS chooses, nothing is set", () => {
    for (const [flags, arch] of [[() => ['avx', 'fma'], 'x64'], [() => ['avx2'], 'x64'], [avx2, 'arm64']] as const) {
      const env: NodeJS.ProcessEnv = {};
      assert.deepEqual(pinKernels(env, flags, arch), { coreType: null, source: 'auto' });
      assert.equal(env.OPENBLAS_CORETYPE, undefined);
    }
    const env: NodeJS.ProcessEnv = { POSTTRAIN_BLAS_CORETYPE: ' AUTO ' };
    assert.deepEqual(pinKernels(env, avx2, 'x64'), { coreType: null, source: 'auto' });
    assert.equal(env.OPENBLAS_CORETYPE, undefined);
  });
  test('a core type named by POSTTRAIN_BLAS_CORETYPE is used; one the user set in OPENBLAS_CORETYPE wins over everything', () => {
    const env: NodeJS.ProcessEnv = { POSTTRAIN_BLAS_CORETYPE: 'SkylakeX' };
    assert.deepEqual(pinKernels(env, avx2, 'x64'), { coreType: 'SkylakeX', source: 'pinned' });
    assert.equal(env.OPENBLAS_CORETYPE, 'SkylakeX');
    const user: NodeJS.ProcessEnv = { OPENBLAS_CORETYPE: 'Zen', POSTTRAIN_BLAS_CORETYPE: 'SkylakeX' };
    assert.deepEqual(pinKernels(user, avx2, 'x64'), { coreType: 'Zen', source: 'OPENBLAS_CORETYPE' });
    assert.equal(user.OPENBLAS_CORETYPE, 'Zen');
  });
  test('a malformed POSTTRAIN_BLAS_CORETYPE is an error naming it', () => {
    assert.throws(() => pinKernels({ POSTTRAIN_BLAS_CORETYPE: 'Has well' }, avx2, 'x64'), /POSTTRAIN_BLAS_CORETYPE: got "Has well", expected 'auto' or an OpenBLAS core type/);
  });
});

describe('kernelsFromConfig', () => {
  test("reads the kernel name off OpenBLAS's configuration line", () => {
    assert.equal(kernelsFromConfig('OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64'), 'Haswell');
    assert.equal(kernelsFromConfig('OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64'), 'SkylakeX');
    assert.equal(kernelsFromConfig('OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY ARMV8 MAX_THREADS=64'), null);
  });
});
