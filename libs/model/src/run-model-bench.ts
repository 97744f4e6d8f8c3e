/**
 * `posttrain model bench`: training and sampling throughput of a Llama-shaped
 * model on the current machine.
 *
 * Training FLOPs per step are counted as
 *   6 · P · tokens                    (forward 2·P, backward 4·P per token; P = all parameters)
 * + 12 · L · T · (H · E) · tokens     (attention scores QKᵀ and the weighted sum PV: 2 · 2 · T · H·E per
 *                                      token per layer forward, ×3 with the backward; full T×T, no causal discount)
 * with tokens = B · T (Kaplan et al. 2020 / PaLM appendix B convention).
 */
import * as tf from '@tensorflow/tfjs-core';
import { adamWUpdate, applyWasmPatches, initBackend, nativeKernelsActive, removeWasmPatches, setNativeKernelsEnabled, wasmPatchesActive } from '@posttrain/backend';
import type { BackendInfo } from '@posttrain/backend';
import { setBlasThreads } from '@posttrain/native-kernels';
import type { ModelShape } from './model-config';
import { createModelConfig } from './model-config';
import { initModel } from './llama-model';
import { tokenLogProbs } from './token-log-probs';
import { generate } from './generate';
import { useStockProductGradients } from './mat-mul';

export interface BenchOptions {
  /** Backend name for initBackend (else POSTTRAIN_BACKEND or automatic). */
  backend?: string;
  /** Model shape; default the tiny Llama: d_model 256, 4 layers, 4 heads, SwiGLU 688, vocab 256, untied. */
  shape?: ModelShape;
  /** Training sequence length and batch size (default 128 and 8). */
  seqLen?: number;
  batchSize?: number;
  /** Timed training steps after `warmupSteps` untimed ones (default 5 and 2). */
  steps?: number;
  warmupSteps?: number;
  /** Sampling: rows, prompt length and new tokens per row (default 8, 16, 32). */
  sampleBatch?: number;
  promptLen?: number;
  newTokens?: number;
  seed?: number;
  learningRate?: number;
  /**
   * Also time the straightforward formulation (tfjs' stock matMul gradients with transposed products,
   * no wasm kernel patches) for `baselineSteps` steps (default 2), and report the speedup.
   */
  compareStraightforward?: boolean;
  baselineSteps?: number;
  /** KV-cache decoding, greedy: batch sizes (default 1, 8, 32), prompt length (32), new tokens (64), timed runs per batch (3; median). */
  decodeBatches?: number[];
  decodePromptLen?: number;
  decodeNewTokens?: number;
  decodeReps?: number;
  /**
   * BLAS thread counts to measure (native kernels only), e.g. [1, 2]: the main figures use the first,
   * `byThreads` repeats training and decoding for each. Default: the count already set (POSTTRAIN_BLAS_THREADS, else 1).
   */
  blasThreads?: number[];
  /** Also time training and decoding with the native kernels switched off (plain wasm), in the same run. */
  compareNative?: boolean;
  /** Profile one training step and one decode (batch 8) by kernel (tf.profile); with compareNative also on plain wasm. */
  profile?: boolean;
}

/** One kernel's time in a profiled step: calls, milliseconds and share of the step's kernel time. */
export interface KernelShare {
  kernel: string;
  calls: number;
  ms: number;
  share: number;
}

/** The `top` kernels of the profiled step, by total time. */
async function profileKernels(run: () => void, top = 12): Promise<KernelShare[]> {
  const profile = await tf.profile(run);
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of profile.kernels) {
    // tf.customGrad's forward is recorded as 'unnamed scope' around the kernels it runs, which are recorded too.
    if (k.name === 'unnamed scope') continue;
    const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    e.calls += 1;
    byKernel.set(k.name, e);
  }
  const total = [...byKernel.values()].reduce((p, e) => p + e.ms, 0);
  return [...byKernel.entries()]
    .sort((x, y) => y[1].ms - x[1].ms)
    .slice(0, top)
    .map(([kernel, e]) => ({ kernel, calls: e.calls, ms: +e.ms.toFixed(1), share: +(e.ms / total).toFixed(3) }));
}

/** Tokens per second of greedy KV-cache decoding at one batch size (median of the timed runs). */
export interface DecodeFigure {
  batch: number;
  promptLen: number;
  newTokens: number;
  tokensPerSecond: number;
}

export interface BenchResult {
  backend: {
    name: string; tfjsBackend: string; version: string; threads: number; simd: boolean | null; patches: string[];
    /** Native kernels: whether they ran, why not, the BLAS and its thread count for the main figures. */
    native: { active: boolean; reason: string; blas: string | null; kernels: BackendInfo['native']['kernels']; threads: number | null };
  };
  shape: {
    modelType: string; vocabSize: number; hiddenSize: number; intermediateSize: number; numLayers: number;
    numHeads: number; numKvHeads: number; headDim: number; tieWordEmbeddings: boolean; seqLen: number; batchSize: number;
  };
  parameters: number;
  train: {
    optimizer: 'adam';
    steps: number;
    tokensPerStep: number;
    flopsPerStep: number;
    flopFormula: string;
    secondsPerStepBest: number;
    secondsPerStepMedian: number;
    /** Median step (the machine may be shared; the best step is in tokensPerSecondBest). */
    tokensPerSecond: number;
    gflopPerSecond: number;
    tokensPerSecondBest: number;
    gflopPerSecondBest: number;
    finalLoss: number;
    /** Present with compareStraightforward. */
    straightforward?: { steps: number; secondsPerStepBest: number; tokensPerSecond: number; gflopPerSecond: number; speedup: number };
  };
  sampling: {
    batch: number;
    promptLen: number;
    newTokens: number;
    withCache: { seconds: number; tokensPerSecond: number };
    withoutCache: { seconds: number; tokensPerSecond: number };
  };
  /** Greedy KV-cache decoding per batch size. */
  decode: DecodeFigure[];
  /** With blasThreads: the same training (median tokens/s) and decoding at each BLAS thread count. */
  byThreads?: { threads: number; train: { tokensPerSecond: number }; decode: DecodeFigure[] }[];
  /** With compareNative (and native kernels active): plain wasm in the same run, and native / plain ratios. */
  plainWasm?: { train: { tokensPerSecond: number; speedup: number }; decode: (DecodeFigure & { speedup: number })[] };
  /** With profile: the top kernels of one training step and one decode at batch 8, as run (and on plain wasm with compareNative). */
  profile?: { train: KernelShare[]; decode: KernelShare[]; plainWasm?: { train: KernelShare[]; decode: KernelShare[] } };
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`bench option ${name}: ${JSON.stringify(v)} is not a positive integer`);
  return v;
}

/** Runs the benchmark and returns one JSON-serialisable object. */
export async function runModelBench(options: BenchOptions = {}): Promise<BenchResult> {
  const info = await initBackend(options.backend === undefined ? {} : { backend: options.backend });
  const seqLen = positiveInt('seqLen', options.seqLen ?? 128);
  const batchSize = positiveInt('batchSize', options.batchSize ?? 8);
  const steps = positiveInt('steps', options.steps ?? 5);
  const warmup = options.warmupSteps ?? 2;
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`bench option warmupSteps: ${JSON.stringify(warmup)} is not an integer >= 0`);
  const sampleBatch = positiveInt('sampleBatch', options.sampleBatch ?? 8);
  const promptLen = positiveInt('promptLen', options.promptLen ?? 16);
  const newTokens = positiveInt('newTokens', options.newTokens ?? 32);
  const seed = options.seed ?? 0;
  const decodeBatches = options.decodeBatches ?? [1, 8, 32];
  decodeBatches.forEach((b, i) => positiveInt(`decodeBatches[${i}]`, b));
  const decodePromptLen = positiveInt('decodePromptLen', options.decodePromptLen ?? 32);
  const decodeNewTokens = positiveInt('decodeNewTokens', options.decodeNewTokens ?? 64);
  const decodeReps = positiveInt('decodeReps', options.decodeReps ?? 3);
  const blasThreads = options.blasThreads ?? [];
  blasThreads.forEach((t, i) => positiveInt(`blasThreads[${i}]`, t));
  if (blasThreads.length > 0 && !info.native.active) throw new Error(`bench option blasThreads: the native kernels are not active (${info.native.reason})`);
  const config = createModelConfig({ maxPositionEmbeddings: Math.max(2048, seqLen, promptLen + newTokens, decodePromptLen + decodeNewTokens), ...options.shape });
  const model = initModel(config, { seed });
  try {
    const V = config.vocabSize;
    const P = model.parameterCount();
    const tokens = batchSize * seqLen;
    const attnFlops = 12 * config.numLayers * seqLen * config.numHeads * config.headDim * tokens;
    const flopsPerStep = 6 * P * tokens + attnFlops;
    // Deterministic synthetic data: a repeating pattern the model can learn, so the loss visibly falls.
    const inputIds = Array.from({ length: batchSize }, (_, b) => Array.from({ length: seqLen }, (_, t) => (b * 7 + t * 3 + ((t * t) % 5)) % V));
    const vars = model.trainableVariables();
    let lastLoss = NaN;
    /**
     * Adam (torch's defaults: betas 0.9, 0.999, eps 1e-8; no weight decay) through the project's update,
     * one fused kernel per parameter with the native kernels, tfjs ops otherwise.
     */
    const makeStep = () => {
      const lr = options.learningRate ?? 1e-3;
      const moments = vars.map((v) => ({ m: tf.variable(tf.zerosLike(v), false), v: tf.variable(tf.zerosLike(v), false) }));
      let t = 0;
      const step = () => {
        const { value, grads } = tf.variableGrads(() => tf.neg(tf.div(tf.sum(tokenLogProbs(model, { inputIds })), batchSize * (seqLen - 1))) as tf.Scalar, vars);
        t++;
        vars.forEach((p, i) => adamWUpdate(p, moments[i].m, moments[i].v, grads[p.name], { lr, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, step: t }));
        lastLoss = value.dataSync()[0];
        value.dispose();
        tf.dispose(grads);
      };
      return { step, dispose: () => tf.dispose(moments.flatMap((x) => [x.m, x.v])) };
    };
    /** Sorted step times (seconds) of `n` Adam steps after `w` untimed ones. */
    const timeTraining = (n: number, w: number): number[] => {
      const { step: trainStep, dispose } = makeStep();
      for (let i = 0; i < w; i++) trainStep();
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        trainStep();
        times.push((performance.now() - t0) / 1000);
      }
      dispose();
      return times.sort((a, b) => a - b);
    };
    if (blasThreads.length > 0) setBlasThreads(blasThreads[0]);
    /** Kernel profile of one training step (after one warm-up step) and one batch-8 decode of 8 tokens. */
    const profileStep = async (): Promise<{ train: KernelShare[]; decode: KernelShare[] }> => {
      const { step, dispose } = makeStep();
      step();
      const train = await profileKernels(step);
      dispose();
      const rows = Array.from({ length: 8 }, (_, b) => Array.from({ length: decodePromptLen }, (_, t) => (b * 5 + t * 11 + 1) % V));
      const decodeRun = () => void generate(model, rows, { maxNewTokens: 8, temperature: 0, seed, useCache: true, stopTokens: [] });
      decodeRun();
      return { train, decode: await profileKernels(decodeRun) };
    };

    const sorted = timeTraining(steps, warmup);
    const finalLoss = lastLoss;
    const best = sorted[0];
    const median = sorted[Math.floor(sorted.length / 2)];
    let straightforward: BenchResult['train']['straightforward'];
    if (options.compareStraightforward) {
      const baselineSteps = positiveInt('baselineSteps', options.baselineSteps ?? 2);
      const patched = wasmPatchesActive();
      if (patched) removeWasmPatches();
      const previous = useStockProductGradients(true);
      try {
        const t = timeTraining(baselineSteps, 1)[0];
        straightforward = { steps: baselineSteps, secondsPerStepBest: t, tokensPerSecond: tokens / t, gflopPerSecond: flopsPerStep / t / 1e9, speedup: t / best };
      } finally {
        useStockProductGradients(previous);
        if (patched) applyWasmPatches();
      }
    }

    const prompts = Array.from({ length: sampleBatch }, (_, b) => Array.from({ length: promptLen }, (_, t) => (b * 5 + t * 11) % V));
    const sample = (useCache: boolean) => {
      generate(model, prompts, { maxNewTokens: 2, seed, useCache, stopTokens: [] }); // warm-up
      const t0 = performance.now();
      const out = generate(model, prompts, { maxNewTokens: newTokens, seed, useCache, stopTokens: [] });
      const seconds = (performance.now() - t0) / 1000;
      const n = out.reduce((a, c) => a + c.tokens.length, 0);
      return { seconds, tokensPerSecond: n / seconds };
    };
    const withCache = sample(true);
    const withoutCache = sample(false);

    const decodeAt = (batch: number): DecodeFigure => {
      const rows = Array.from({ length: batch }, (_, b) => Array.from({ length: decodePromptLen }, (_, t) => (b * 5 + t * 11 + 1) % V));
      const run = (n: number) => generate(model, rows, { maxNewTokens: n, temperature: 0, seed, useCache: true, stopTokens: [] });
      run(2); // warm-up
      const rates: number[] = [];
      for (let i = 0; i < decodeReps; i++) {
        const t0 = performance.now();
        const out = run(decodeNewTokens);
        const seconds = (performance.now() - t0) / 1000;
        rates.push(out.reduce((a, c) => a + c.tokens.length, 0) / seconds);
      }
      rates.sort((a, b) => a - b);
      return { batch, promptLen: decodePromptLen, newTokens: decodeNewTokens, tokensPerSecond: rates[Math.floor(rates.length / 2)] };
    };
    const decode = decodeBatches.map(decodeAt);
    const medianRate = (times: number[]) => tokens / times[Math.floor(times.length / 2)];

    let byThreads: BenchResult['byThreads'];
    if (blasThreads.length > 0) {
      byThreads = [{ threads: blasThreads[0], train: { tokensPerSecond: tokens / median }, decode }];
      for (const t of blasThreads.slice(1)) {
        setBlasThreads(t);
        byThreads.push({ threads: t, train: { tokensPerSecond: medianRate(timeTraining(steps, 1)) }, decode: decodeBatches.map(decodeAt) });
      }
      setBlasThreads(blasThreads[0]);
    }
    let plainWasm: BenchResult['plainWasm'];
    if (options.compareNative && nativeKernelsActive()) {
      const previous = setNativeKernelsEnabled(false);
      try {
        const trainRate = medianRate(timeTraining(steps, 1));
        plainWasm = {
          train: { tokensPerSecond: trainRate, speedup: tokens / median / trainRate },
          decode: decodeBatches.map((b, i) => {
            const d = decodeAt(b);
            return { ...d, speedup: decode[i].tokensPerSecond / d.tokensPerSecond };
          }),
        };
      } finally {
        setNativeKernelsEnabled(previous);
      }
    }
    let profile: BenchResult['profile'];
    if (options.profile) {
      profile = await profileStep();
      if (options.compareNative && nativeKernelsActive()) {
        const previous = setNativeKernelsEnabled(false);
        try {
          profile.plainWasm = await profileStep();
        } finally {
          setNativeKernelsEnabled(previous);
        }
      }
    }
    const native = { active: info.native.active, reason: info.native.reason, blas: info.native.blas, kernels: info.native.kernels, threads: blasThreads[0] ?? info.native.threads };
    return {
      backend: { name: info.name, tfjsBackend: info.tfjsBackend, version: info.version, threads: info.threads, simd: info.simd, patches: [...info.patches], native },
      shape: {
        modelType: config.modelType, vocabSize: V, hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize,
        numLayers: config.numLayers, numHeads: config.numHeads, numKvHeads: config.numKvHeads, headDim: config.headDim,
        tieWordEmbeddings: config.tieWordEmbeddings, seqLen, batchSize,
      },
      parameters: P,
      train: {
        optimizer: 'adam',
        steps,
        tokensPerStep: tokens,
        flopsPerStep,
        flopFormula: '6*P*tokens + 12*L*T*(H*E)*tokens',
        secondsPerStepBest: best,
        secondsPerStepMedian: median,
        tokensPerSecond: tokens / median,
        gflopPerSecond: flopsPerStep / median / 1e9,
        tokensPerSecondBest: tokens / best,
        gflopPerSecondBest: flopsPerStep / best / 1e9,
        finalLoss,
        ...(straightforward ? { straightforward } : {}),
      },
      sampling: { batch: sampleBatch, promptLen, newTokens, withCache, withoutCache },
      decode,
      ...(byThreads ? { byThreads } : {}),
      ...(plainWasm ? { plainWasm } : {}),
      ...(profile ? { profile } : {}),
    };
  } finally {
    model.dispose();
  }
}
