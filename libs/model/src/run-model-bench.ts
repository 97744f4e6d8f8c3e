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
import { applyWasmPatches, initBackend, removeWasmPatches, wasmPatchesActive } from '@posttrain/backend';
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
}

export interface BenchResult {
  backend: { name: string; tfjsBackend: string; version: string; threads: number; simd: boolean | null; patches: string[] };
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
    tokensPerSecond: number;
    gflopPerSecond: number;
    tokensPerSecondMedian: number;
    gflopPerSecondMedian: number;
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
  const config = createModelConfig({ maxPositionEmbeddings: Math.max(2048, seqLen, promptLen + newTokens), ...options.shape });
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
    /** Sorted step times (seconds) of `n` Adam steps after `w` untimed ones. */
    const timeTraining = (n: number, w: number): number[] => {
      const optimizer: tf.Optimizer = tf.train.adam(options.learningRate ?? 1e-3);
      const trainStep = () => {
        const { value, grads } = tf.variableGrads(() => tf.neg(tf.div(tf.sum(tokenLogProbs(model, { inputIds })), batchSize * (seqLen - 1))) as tf.Scalar, vars);
        optimizer.applyGradients(grads);
        lastLoss = value.dataSync()[0];
        value.dispose();
        tf.dispose(grads);
      };
      for (let i = 0; i < w; i++) trainStep();
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        trainStep();
        times.push((performance.now() - t0) / 1000);
      }
      optimizer.dispose();
      return times.sort((a, b) => a - b);
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
    return {
      backend: { name: info.name, tfjsBackend: info.tfjsBackend, version: info.version, threads: info.threads, simd: info.simd, patches: [...info.patches] },
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
        tokensPerSecond: tokens / best,
        gflopPerSecond: flopsPerStep / best / 1e9,
        tokensPerSecondMedian: tokens / median,
        gflopPerSecondMedian: flopsPerStep / median / 1e9,
        finalLoss,
        ...(straightforward ? { straightforward } : {}),
      },
      sampling: { batch: sampleBatch, promptLen, newTokens, withCache, withoutCache },
    };
  } finally {
    model.dispose();
  }
}
