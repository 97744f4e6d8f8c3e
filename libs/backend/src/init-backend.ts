import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import './register-tfjs-extras';
import '@tensorflow/tfjs-backend-cpu';
import * as tfWasm from '@tensorflow/tfjs-backend-wasm';
import { BACKEND_NAMES, parseBackendName, type BackendName, type BackendRequest } from './backend-name';
import { blasThreadsFromEnv, loadNativeKernels } from '@posttrain/native-kernels';
import { applyWasmPatches, type WasmPatch } from './wasm-patches';
import { useNativeKernels } from './native-state';

/**
 * One line naming the backend that runs: "wasm (tfjs 4.22.0, 1 thread) + native OpenBLAS (Haswell kernels, pinned, 1 thread)",
 * or "wasm (tfjs 4.22.0, 1 thread), plain: <why no native kernels>".
 */
export function describeBackend(info: BackendInfo): string {
  const plural = (n: number) => `${n} thread${n === 1 ? '' : 's'}`;
  const base = `${info.name} (tfjs ${info.version}, ${plural(info.threads)})`;
  if (info.name !== 'wasm') return base;
  if (!info.native.active) return `${base}, plain: ${info.native.reason}`;
  const kernels = describeKernels(info.native.kernels);
  return `${base} + native ${info.native.blas} (${kernels ? `${kernels}, ` : ''}${info.native.threads === null ? 'system threads' : plural(info.native.threads)})`;
}

/** "Haswell kernels, pinned", "SkylakeX kernels" (OpenBLAS's own choice), "Zen kernels, OPENBLAS_CORETYPE"; '' when unknown. */
export function describeKernels(k: NativeKernelsInfo['kernels']): string {
  if (!k?.core) return '';
  return `${k.core} kernels${k.source === 'auto' ? '' : `, ${k.source}`}`;
}

/** The native kernels behind the wasm backend (@posttrain/native-kernels). */
export interface NativeKernelsInfo {
  /** Whether native kernels are registered on the wasm backend. */
  active: boolean;
  /** 'loaded', or why they are not: not the wasm backend, patches off, POSTTRAIN_NATIVE=0, not built, failed to load. */
  reason: string;
  /** 'OpenBLAS' or 'Accelerate', and the BLAS's own configuration line. */
  blas: string | null;
  config: string | null;
  /** Which OpenBLAS kernels run and who chose them (POSTTRAIN_BLAS_CORETYPE; see @posttrain/native-kernels pinKernels); null for Accelerate. */
  kernels: { core: string | null; source: 'pinned' | 'OPENBLAS_CORETYPE' | 'auto' } | null;
  /** BLAS threads (POSTTRAIN_BLAS_THREADS, default 1); null where the BLAS manages its own (Accelerate). */
  threads: number | null;
}

/** What runs, as returned by `initBackend` and written to the log. */
export interface BackendInfo {
  /** The posttrain backend that runs. */
  name: BackendName;
  /** The tfjs backend name behind it (`tf.getBackend()`): 'tensorflow', 'wasm' or 'cpu'. */
  tfjsBackend: string;
  /** The npm package that provides it, and its version. */
  package: string;
  version: string;
  /** @tensorflow/tfjs-core version. */
  tfjsCoreVersion: string;
  /**
   * Compute threads: XNNPACK's pool size on wasm (1 in Node: tfjs disables
   * the threaded wasm build there), 1 on cpu, the logical core count on
   * tensorflow (libtensorflow's default intra-op pool).
   */
  threads: number;
  /** Whether wasm SIMD is in use; null for native TensorFlow (its own CPU dispatch). */
  simd: boolean | null;
  /** What was asked for, and where the request came from. */
  requested: BackendRequest;
  requestSource: 'option' | 'env' | 'default';
  /** Kernel patches active (wasm only; see applyWasmPatches). */
  patches: WasmPatch[];
  /** Backends tried before this one in automatic selection, and why each was passed over. */
  skipped: { name: BackendName; reason: string }[];
  /** Native kernels (wasm only; `active: false` with the reason otherwise). */
  native: NativeKernelsInfo;
}

/** The one logging call this package makes; `@posttrain/telemetry`'s Logger fits. */
export interface BackendLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
}

export interface InitBackendOptions {
  /**
   * Backend to use ('auto', a BackendName or an alias such as 'gpu', 'node').
   * Defaults to the POSTTRAIN_BACKEND environment variable, then 'auto'.
   */
  backend?: string;
  /** Install the wasm kernel patches (default true; false only to measure without them). Native kernels come with the patches. */
  patches?: boolean;
  /** Where the "backend selected" record goes; defaults to one JSON line on stderr
   * (suppressed when POSTTRAIN_LOG_LEVEL is warn, error or silent). */
  logger?: BackendLogger;
  /** Module loader, replaceable in tests to simulate installed or absent packages. */
  requireModule?: (id: string) => unknown;
}

const PACKAGES: Record<BackendName, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

const TFJS_NAMES: Record<BackendName, string> = {
  'tensorflow-gpu': 'tensorflow',
  tensorflow: 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

const nodeRequire = createRequire(__filename);

let current: { key: string; promise: Promise<BackendInfo> } | null = null;

/**
 * Chooses and initialises the tfjs backend once per process and returns what
 * runs. Later calls return the same result; a later call that asks for a
 * different backend (or patch setting) is rejected rather than silently
 * ignored. Selection: `options.backend`, else POSTTRAIN_BACKEND, else 'auto'
 * (tensorflow-gpu, tensorflow, wasm, cpu: the first that loads). A backend
 * named explicitly must load, or the call rejects saying why.
 */
export function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  let requested: BackendRequest;
  let requestSource: BackendInfo['requestSource'];
  try {
    if (options.backend !== undefined) {
      requested = parseBackendName(options.backend, 'initBackend options.backend');
      requestSource = 'option';
    } else if (process.env.POSTTRAIN_BACKEND !== undefined && process.env.POSTTRAIN_BACKEND.trim() !== '') {
      requested = parseBackendName(process.env.POSTTRAIN_BACKEND, 'POSTTRAIN_BACKEND');
      requestSource = 'env';
    } else {
      requested = 'auto';
      requestSource = 'default';
    }
    // Checked up front: in automatic selection a bad value must not pass wasm over for cpu.
    blasThreadsFromEnv();
  } catch (err) {
    return Promise.reject(err);
  }
  if (options.patches !== undefined && typeof options.patches !== 'boolean') {
    return Promise.reject(new Error(`initBackend options.patches: got ${JSON.stringify(options.patches)}, expected true or false`));
  }
  const patches = options.patches ?? true;
  const key = `${requested}|patches=${patches}`;
  if (current !== null) {
    if (current.key !== key) {
      return Promise.reject(
        new Error(`initBackend: already initialised as ${current.key}; cannot switch to ${key} in the same process`),
      );
    }
    return current.promise;
  }
  const promise = select(requested, requestSource, patches, options);
  current = { key, promise };
  // A failed initialisation may be retried (e.g. with another backend).
  promise.catch(() => {
    if (current?.promise === promise) current = null;
  });
  return promise;
}

/** The result of the finished `initBackend` call, or null before one succeeded. */
export function getBackendInfo(): BackendInfo | null {
  return lastInfo;
}

let lastInfo: BackendInfo | null = null;

async function select(
  requested: BackendRequest,
  requestSource: BackendInfo['requestSource'],
  patches: boolean,
  options: InitBackendOptions,
): Promise<BackendInfo> {
  const load = options.requireModule ?? nodeRequire;
  const candidates: readonly BackendName[] = requested === 'auto' ? BACKEND_NAMES : [requested];
  const skipped: BackendInfo['skipped'] = [];
  for (const name of candidates) {
    let info: Loaded;
    try {
      info = await tryBackend(name, load, patches);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (requested !== 'auto') {
        const from = requestSource === 'env' ? 'POSTTRAIN_BACKEND' : 'initBackend options.backend';
        throw new Error(`${from}: backend "${name}" cannot be used: ${reason}`);
      }
      skipped.push({ name, reason });
      continue;
    }
    const result: BackendInfo = { ...info, requested, requestSource, skipped };
    lastInfo = result;
    (options.logger ?? defaultLogger()).info('tfjs backend selected', { backend: result, summary: describeBackend(result) });
    return result;
  }
  throw new Error(`initBackend: no backend could be initialised: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

type Loaded = Omit<BackendInfo, 'requested' | 'requestSource' | 'skipped'>;

async function tryBackend(name: BackendName, load: (id: string) => unknown, patches: boolean): Promise<Loaded> {
  const pkg = PACKAGES[name];
  const tfjsName = TFJS_NAMES[name];
  const noNative = (reason: string): NativeKernelsInfo => ({ active: false, reason, blas: null, config: null, kernels: null, threads: null });
  const base = { name, tfjsBackend: tfjsName, package: pkg, tfjsCoreVersion: tf.version_core, native: noNative('not the wasm backend') };
  if (name === 'tensorflow-gpu' || name === 'tensorflow') {
    try {
      load(pkg);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'MODULE_NOT_FOUND' && String((err as Error).message).includes(pkg)) {
        throw new Error(
          `${pkg} is not installed (its install step downloads libtensorflow; run \`npm install ${pkg}\` where that is possible)`,
        );
      }
      throw new Error(`${pkg} is installed but failed to load: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (tf.findBackendFactory(tfjsName) === null) {
      throw new Error(
        `${pkg} loaded but registered no '${tfjsName}' backend with this copy of @tensorflow/tfjs-core ` +
          `(${tf.version_core}); its @tensorflow/tfjs dependency probably resolves to another tfjs-core version`,
      );
    }
    await activate(tfjsName, pkg);
    return { ...base, version: packageVersion(pkg, load), threads: availableParallelism(), simd: null, patches: [] };
  }
  if (name === 'wasm') {
    const dir = wasmBinaryDir();
    tfWasm.setWasmPaths(dir + sep);
    let native = noNative('wasm kernel patches are off (initBackend patches: false)');
    if (patches) {
      const { addon, status } = loadNativeKernels();
      useNativeKernels(addon);
      native = { active: addon !== null, reason: status.reason, blas: status.blas, config: status.config, kernels: status.kernels, threads: status.threads };
    }
    const applied = patches ? applyWasmPatches() : [];
    await activate(tfjsName, pkg);
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    return { ...base, version: tfWasm.version_wasm, threads: tfWasm.getThreadsCount(), simd: Boolean(simd), patches: applied, native };
  }
  await activate(tfjsName, pkg);
  return { ...base, version: tf.version_core, threads: 1, simd: false, patches: [] };
}

async function activate(tfjsName: string, pkg: string): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(tfjsName);
    await tf.ready();
  } catch (err) {
    throw new Error(`${pkg}: backend '${tfjsName}' failed to initialise: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!ok || tf.getBackend() !== tfjsName) {
    throw new Error(`${pkg}: backend '${tfjsName}' failed to initialise (tf.setBackend returned false)`);
  }
}

/** The folder holding the .wasm binaries inside the installed package. */
export function wasmBinaryDir(): string {
  const dir = dirname(nodeRequire.resolve('@tensorflow/tfjs-backend-wasm'));
  const simd = join(dir, 'tfjs-backend-wasm-simd.wasm');
  if (!existsSync(simd)) {
    throw new Error(`@tensorflow/tfjs-backend-wasm: binary not found at ${simd}; the package install looks incomplete`);
  }
  return dir;
}

function packageVersion(pkg: string, load: (id: string) => unknown): string {
  try {
    const meta = load(`${pkg}/package.json`) as { version?: unknown };
    return typeof meta.version === 'string' ? meta.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

function defaultLogger(): BackendLogger {
  const level = (process.env.POSTTRAIN_LOG_LEVEL ?? 'info').trim().toLowerCase();
  const quiet = level === 'warn' || level === 'error' || level === 'silent';
  return {
    info: (msg, fields) => {
      if (quiet) return;
      const record = { ts: new Date().toISOString(), level: 'info', service: 'backend', msg, ...fields };
      process.stderr.write(JSON.stringify(record) + '\n');
    },
  };
}
