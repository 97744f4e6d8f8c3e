import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { initBackend, wasmPatchesActive } from './index';

// tfjs-node cannot be installed here, so a stand-in plays it: requiring
// '@tensorflow/tfjs-node' registers a backend named 'tensorflow' (as the real
// package does), implemented by the cpu backend class.
test('auto picks tfjs-node when it loads, ahead of wasm, and reports it', async () => {
  const loaded: string[] = [];
  const requireModule = (id: string): unknown => {
    loaded.push(id);
    if (id === '@tensorflow/tfjs-node') {
      tf.registerBackend('tensorflow', () => new MathBackendCPU());
      return {};
    }
    if (id === '@tensorflow/tfjs-node/package.json') return { version: '4.22.0-standin' };
    const err = new Error(`Cannot find module '${id}'`) as Error & { code: string };
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  };
  const info = await initBackend({ backend: 'auto', logger: { info: () => undefined }, requireModule });
  assert.deepEqual(loaded, ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node/package.json']);
  assert.equal(info.name, 'tensorflow');
  assert.equal(info.tfjsBackend, 'tensorflow');
  assert.equal(tf.getBackend(), 'tensorflow');
  assert.equal(info.package, '@tensorflow/tfjs-node');
  assert.equal(info.version, '4.22.0-standin');
  assert.equal(info.simd, null);
  assert.deepEqual(info.patches, []);
  assert.equal(wasmPatchesActive(), false, 'wasm kernels are left alone when wasm is not chosen');
  assert.deepEqual(info.skipped.map((s) => s.name), ['tensorflow-gpu']);
  assert.match(info.skipped[0].reason, /@tensorflow\/tfjs-node-gpu is not installed/);
});
