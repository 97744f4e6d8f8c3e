/**
 * What the stage runner needs from a stage (causal LM / SFT, reward model,
 * DPO): a stream of training micro-batches, a differentiable loss on one of
 * them, and an evaluation over the held-out split. The runner owns the
 * optimizer, schedule, accumulation, clipping, checkpoints and artifacts.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { tidy as tfTidy } from '@tensorflow/tfjs-core';
import type { DataPosition } from '@posttrain/data';

export interface MicroBatchLoss {
  /** Scalar loss (differentiable; call inside tf.variableGrads). */
  loss: tf.Scalar;
  /** Diagnostics as plain numbers, TRL names (`loss/sft`, `rewards/margins`, ...). */
  metrics: Record<string, number>;
  /** Tokens processed (for throughput). */
  tokens: number;
}

export interface StageTask<B> {
  next(): Promise<B>;
  loss(batch: B, dropoutSeed: number): MicroBatchLoss;
  /** Metrics over the whole eval split, named `eval/...`; null when there is no eval split. */
  evaluate(): Promise<Record<string, number> | null>;
  /** Resume position of the training loader. */
  position(): DataPosition;
  /** The epoch the next training example comes from. */
  readonly epoch: number;
  /** Training batches in one epoch (a dry pass over the data with a throwaway loader). */
  countEpochBatches(): Promise<number>;
  dispose(): void;
}

/** Int32Array 0/1 -> Uint8Array mask (what the model's forward takes). */
export function toUint8(mask: Int32Array): Uint8Array {
  return Uint8Array.from(mask);
}

/** Flat [B*T] -> rows [B][T]. */
export function toRows(flat: Int32Array, rows: number, cols: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) out.push(Array.from(flat.subarray(r * cols, (r + 1) * cols)));
  return out;
}

/** Weighted running means of metric records (weights: tokens or pairs). */
export class MetricMeans {
  private sums = new Map<string, number>();
  private weights = new Map<string, number>();

  add(metrics: Record<string, number>, weight: number): void {
    for (const [k, v] of Object.entries(metrics)) {
      this.sums.set(k, (this.sums.get(k) ?? 0) + v * weight);
      this.weights.set(k, (this.weights.get(k) ?? 0) + weight);
    }
  }

  means(prefix = ''): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, s] of this.sums) {
      const w = this.weights.get(k) ?? 0;
      out[prefix + k] = w > 0 ? s / w : 0;
    }
    return out;
  }
}

/** Runs a loss computation in tf.tidy, keeping only the loss tensor and the (plain-number) metrics. */
export function tidyLossOutput<K extends string>(compute: () => { loss: tf.Scalar; metrics: Readonly<Record<K, number>> }): { loss: tf.Scalar; metrics: Record<K, number> } {
  let metrics = {} as Record<K, number>;
  const loss = tfTidy(() => {
    const out = compute();
    metrics = { ...out.metrics };
    return out.loss;
  });
  return { loss, metrics };
}
