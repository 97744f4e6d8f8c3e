import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/**
 * The addon's functions. Every kernel takes the wasm heap (the ArrayBuffer
 * behind the tfjs wasm backend's memory) and element offsets into it, checks
 * that every range lies inside the heap, and writes only its output range
 * (decodeAttention also the one cache column it appends).
 */
export interface NativeAddon {
  /**
   * For each batch entry i: C_i = op(A_i) · op(B_i), A_i at heap[aOffsets[i]] ([m,k], or [k,m]
   * when transA), B_i at heap[bOffsets[i]] ([k,n], or [n,k] when transB), row-major, and
   * C_i at heap[cOffset + i*m*n]. A broadcast operand repeats its offset.
   */
  sgemm(heap: ArrayBuffer, m: number, n: number, k: number, transA: boolean, transB: boolean,
    aOffsets: Int32Array, bOffsets: Int32Array, cOffset: number): void;
  /**
   * One AdamW update of n floats (param, m, v, grad -> their outputs; offsets in floats):
   * m' = b1 m + (1-b1) g, v' = b2 v + (1-b2) g², p' = p·decay − lr·(m'/bc1)/(√(v'/bc2) + eps).
   */
  adamw(heap: ArrayBuffer, p: number, m: number, v: number, g: number, pOut: number, mOut: number, vOut: number, n: number,
    lr: number, beta1: number, beta2: number, eps: number, decay: number, bc1: number, bc2: number): void;
  /** RMSNorm of rows x d floats: y = x · rstd · w, rstd[i] = 1/√(mean_j x² + eps) (also written out, for the gradient). */
  rmsnorm(heap: ArrayBuffer, x: number, w: number, y: number, rstd: number, rows: number, d: number, eps: number): void;
  /** RMSNorm's gradients from dy and the forward's rstd: dx (rows x d) and dw (d). */
  rmsnormGrad(heap: ArrayBuffer, dy: number, x: number, w: number, rstd: number, dx: number, dw: number, rows: number, d: number): void;
  /**
   * One decoding step's attention, all heads (grouped-query included): RoPE on q [B, H*E] and k [B, G*E] with
   * cos/sin [B, E]; rope(k) and v written into the cache keys/values [B, G, capacity, E] at `column`; then
   * out [B, H*E] = softmax(q·Kᵀ·scale + bias)·V over columns 0..column, bias [B, column + 1] additive.
   */
  decodeAttention(heap: ArrayBuffer, q: number, k: number, v: number, cos: number, sin: number, keys: number, values: number, bias: number,
    out: number, batch: number, heads: number, kvHeads: number, headDim: number, capacity: number, column: number, scale: number): void;
  /** SwiGLU's gate: out = gate · sigmoid(gate) · up over n floats. */
  swiglu(heap: ArrayBuffer, gate: number, up: number, out: number, n: number): void;
  /** Sets the BLAS thread count (OpenBLAS; a no-op on Accelerate, which manages its own threads). */
  setThreads(n: number): void;
  info(): { blas: string; config: string; threads: number | null };
}

/** Whether the addon loaded, and if not, why (for the "backend selected" log and the bench). */
export interface NativeStatus {
  available: boolean;
  /** 'loaded', or why not: disabled, not built (with the build's own message), failed to load. */
  reason: string;
  /** The .node file. */
  path: string;
  blas: string | null;
  config: string | null;
  /**
   * The OpenBLAS kernels that run ("Haswell", "SkylakeX", ...; read off its configuration line), and
   * who chose them: 'pinned' (POSTTRAIN_BLAS_CORETYPE, default Haswell on x86-64 with AVX2 and FMA),
   * 'OPENBLAS_CORETYPE' (set by the user) or 'auto' (OpenBLAS's own choice for this CPU). Null for
   * Accelerate, or when the configuration line does not name them.
   */
  kernels: { core: string | null; source: 'pinned' | 'OPENBLAS_CORETYPE' | 'auto' } | null;
  /** BLAS threads; null where the BLAS manages them itself (Accelerate). */
  threads: number | null;
}

const addonPath = join(__dirname, '..', 'build', 'Release', 'posttrain_native.node');
let loaded: { addon: NativeAddon | null; status: NativeStatus } | null = null;

/** Reads POSTTRAIN_BLAS_THREADS (default 1, like the wasm backend); throws on anything but a positive integer. */
export function blasThreadsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.POSTTRAIN_BLAS_THREADS;
  if (raw === undefined || raw.trim() === '') return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new Error(`POSTTRAIN_BLAS_THREADS: got "${raw}", expected an integer from 1 to 1024`);
  return n;
}

/** What pinKernels decided: the core type it set OPENBLAS_CORETYPE to, and why. */
export interface KernelChoice {
  coreType: string | null;
  source: 'pinned' | 'OPENBLAS_CORETYPE' | 'auto';
}

/**
 * Which OpenBLAS kernels to load. OpenBLAS (a DYNAMIC_ARCH build, as Debian's) picks its kernels for
 * the CPU when it loads, and kernels for different CPUs sum in different orders: the same seed gave
 * SFT losses differing in the 7th digit after 5 steps between the Haswell and SkylakeX kernels, and
 * after training, different models (held-out style ranking 66.0% against 64.0%). Pinning one kernel
 * set that every x86-64 CPU with AVX2 and FMA runs makes the numbers the same on all of them.
 * POSTTRAIN_BLAS_CORETYPE: unset or '' = Haswell where the CPU has AVX2 and FMA (else OpenBLAS's
 * choice); 'auto' = OpenBLAS's choice (fastest on CPUs with wider vectors); a name = that core type.
 * An OPENBLAS_CORETYPE the user set wins over all of it.
 */
export function pinKernels(env: NodeJS.ProcessEnv = process.env, cpuFlags: () => readonly string[] = linuxCpuFlags, arch: string = process.arch): KernelChoice {
  if ((env.OPENBLAS_CORETYPE ?? '').trim() !== '') return { coreType: env.OPENBLAS_CORETYPE!.trim(), source: 'OPENBLAS_CORETYPE' };
  const raw = (env.POSTTRAIN_BLAS_CORETYPE ?? '').trim();
  if (raw.toLowerCase() === 'auto') return { coreType: null, source: 'auto' };
  if (raw !== '') {
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(raw)) throw new Error(`POSTTRAIN_BLAS_CORETYPE: got ${JSON.stringify(raw)}, expected 'auto' or an OpenBLAS core type such as Haswell`);
    env.OPENBLAS_CORETYPE = raw;
    return { coreType: raw, source: 'pinned' };
  }
  if (arch !== 'x64') return { coreType: null, source: 'auto' };
  const flags = new Set(cpuFlags());
  if (!flags.has('avx2') || !flags.has('fma')) return { coreType: null, source: 'auto' };
  env.OPENBLAS_CORETYPE = 'Haswell';
  return { coreType: 'Haswell', source: 'pinned' };
}

/** The CPU's feature flags from /proc/cpuinfo (none where there is no such file). */
function linuxCpuFlags(): string[] {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    return line ? line.slice(line.indexOf(':') + 1).trim().split(/\s+/) : [];
  } catch {
    return [];
  }
}

/** The kernel name on OpenBLAS's configuration line ("OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64" -> "Haswell"). */
export function kernelsFromConfig(config: string): string | null {
  return config.split(/\s+/).find((t) => /^[A-Z][a-z][A-Za-z0-9]*$/.test(t) && t !== 'OpenBLAS') ?? null;
}

/**
 * Loads the addon once per process. Never throws for a missing or broken
 * addon: the status says why it is absent and callers run plain wasm.
 * POSTTRAIN_NATIVE=0 disables it; POSTTRAIN_BLAS_THREADS sets the BLAS threads (default 1);
 * POSTTRAIN_BLAS_CORETYPE which OpenBLAS kernels load (pinKernels).
 */
export function loadNativeKernels(): { addon: NativeAddon | null; status: NativeStatus } {
  if (loaded !== null) return loaded;
  const absent = (reason: string) => ({ addon: null, status: { available: false, reason, path: addonPath, blas: null, config: null, kernels: null, threads: null } });
  const flag = (process.env.POSTTRAIN_NATIVE ?? '').trim().toLowerCase();
  if (flag === '0' || flag === 'false' || flag === 'off') {
    loaded = absent('disabled by POSTTRAIN_NATIVE=0');
    return loaded;
  }
  if (!existsSync(addonPath)) {
    loaded = absent(`not built: ${buildMessage() ?? 'no build has run'} (npm run build -w @posttrain/native-kernels)`);
    return loaded;
  }
  // OpenBLAS reads OPENBLAS_CORETYPE once, when the addon loads it. pinKernels sets it for that load
  // only, so that processes started from this one choose for themselves (a bad POSTTRAIN_BLAS_CORETYPE
  // throws, as a bad POSTTRAIN_BLAS_THREADS does).
  const before = process.env.OPENBLAS_CORETYPE;
  const choice = pinKernels();
  let addon: NativeAddon;
  try {
    addon = createRequire(__filename)(addonPath) as NativeAddon;
  } catch (err) {
    loaded = absent(`failed to load ${addonPath}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    return loaded;
  } finally {
    if (before === undefined) delete process.env.OPENBLAS_CORETYPE;
    else process.env.OPENBLAS_CORETYPE = before;
  }
  addon.setThreads(blasThreadsFromEnv());
  const info = addon.info();
  const kernels = info.blas === 'OpenBLAS' ? { core: kernelsFromConfig(info.config), source: choice.source } : null;
  loaded = { addon, status: { available: true, reason: 'loaded', path: addonPath, blas: info.blas, config: info.config, kernels, threads: info.threads } };
  return loaded;
}

/** Sets the BLAS thread count of the loaded addon and returns what the BLAS reports. */
export function setBlasThreads(n: number): number | null {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new Error(`setBlasThreads: got ${n}, expected an integer from 1 to 1024`);
  const { addon, status } = loadNativeKernels();
  if (addon === null) throw new Error(`setBlasThreads: the native addon is not available (${status.reason})`);
  addon.setThreads(n);
  status.threads = addon.info().threads;
  return status.threads;
}

function buildMessage(): string | null {
  try {
    const s = JSON.parse(readFileSync(join(__dirname, '..', 'build', 'status.json'), 'utf8')) as { message?: unknown };
    return typeof s.message === 'string' ? s.message : null;
  } catch {
    return null;
  }
}
