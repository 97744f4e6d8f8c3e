/**
 * What the stage runner needs from a stage (causal LM / SFT, reward model,
 * DPO): a stream of training micro-batches, a differentiable loss on one of
 * them, and an evaluation over the held-out split. The runner owns the
 * optimizer, schedule, accumulation, clipping, checkpoints and artifacts.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { tidy as tfTidy } from '@tensorflow/tfjs-core';
import type { DataConfig, DataLoader, DataPosition, RecordSource, TokenizerLike } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';

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

/** The training and eval splits of a stage, with their data configs. */
export interface StageSplits {
  train: RecordSource;
  eval: RecordSource | null;
  trainData: DataConfig;
  evalData: DataConfig;
  /** Where the training loader resumes; from the start when absent. */
  position?: DataPosition;
}

/** What every stage task is built from: the model, the tokenizer and the splits. */
export interface StageTaskOptions extends StageSplits {
  model: LlamaModel;
  tokenizer: TokenizerLike;
}

/** The part of a data loader that a loader task uses. */
type BatchLoader<B> = Pick<DataLoader<unknown, B>, 'next' | 'position' | 'currentEpoch' | 'epochBatches'>;

/** One eval batch's contribution to the split's metrics: its metrics (named without `eval/`) and their weight in the means. */
export interface EvalContribution {
  metrics: Record<string, number>;
  weight: number;
}

/** What a stage adds to its splits to make a loader task. */
export interface LoaderTaskStage<B> {
  /** A loader over one split (createSftLoader or createPreferenceLoader, with the tokenizer bound). */
  createLoader(source: RecordSource, config: DataConfig, position?: DataPosition): BatchLoader<B>;
  /** The training loss of one batch. */
  loss(batch: B, dropoutSeed: number): MicroBatchLoss;
  /** The eval loss of one batch (no dropout); null when the stage cannot evaluate (evaluate() then returns null). */
  evalLoss: ((batch: B) => MicroBatchLoss) | null;
  /** What one batch's eval loss adds to the split's weighted means; null to leave the batch out. */
  evalContribution(out: MicroBatchLoss, batch: B): EvalContribution | null;
}

/**
 * A StageTask over a resumable training loader: next, position and epoch
 * come from the loader, countEpochBatches makes a dry pass with a throwaway
 * loader, and evaluate averages the eval batches' metrics (weighted as the
 * stage says) under `eval/` names; it returns null without an eval split.
 */
export function loaderTask<B>(splits: StageSplits, stage: LoaderTaskStage<B>): StageTask<B> {
  const loader = stage.createLoader(splits.train, splits.trainData, splits.position);
  return {
    next: () => loader.next(),
    loss: (batch, seed) => stage.loss(batch, seed),
    position: () => loader.position(),
    get epoch() {
      return loader.currentEpoch;
    },
    async countEpochBatches() {
      const dry = stage.createLoader(splits.train, { ...splits.trainData });
      let n = 0;
      for await (const _ of dry.epochBatches()) n++;
      return n;
    },
    async evaluate() {
      const evalLoss = stage.evalLoss;
      if (splits.eval === null || evalLoss === null) return null;
      const evalLoader = stage.createLoader(splits.eval, splits.evalData);
      const means = new MetricMeans();
      for await (const batch of evalLoader.epochBatches()) {
        const out = evalLoss(batch);
        out.loss.dispose();
        const c = stage.evalContribution(out, batch);
        if (c !== null) means.add(c.metrics, c.weight);
      }
      return means.means('eval/');
    },
    dispose: () => undefined,
  };
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
