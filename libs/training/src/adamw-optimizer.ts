/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization",
 * Algorithm 2), as torch.optim.AdamW computes it for step t >= 1:
 *   p <- p - lr * wd * p                         (decoupled decay, before the update)
 *   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
 *   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * Decay applies to matrices only (rank >= 2): like the Hugging Face trainers,
 * biases and norm weights are not decayed.
 *
 * The state (t and the moments m, v of every parameter, by name) is plain
 * data for checkpoints: float32 arrays round-trip exactly, so a resumed run
 * takes bit-identical steps.
 */
import * as tf from '@tensorflow/tfjs-core';
import { adamWUpdate } from '@posttrain/backend';

export interface NamedVariable {
  name: string;
  variable: tf.Variable;
}

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

export type OptimizerTensors = Map<string, { shape: number[]; data: Float32Array }>;

export class AdamW {
  /** Number of updates applied so far (Adam's t). */
  t = 0;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];

  constructor(readonly params: NamedVariable[], readonly options: AdamWOptions) {
    const names = new Set<string>();
    for (const p of params) {
      if (names.has(p.name)) throw new Error(`AdamW: parameter name ${p.name} appears twice`);
      names.add(p.name);
    }
    this.m = params.map((p) => tf.variable(tf.zerosLike(p.variable), false));
    this.v = params.map((p) => tf.variable(tf.zerosLike(p.variable), false));
  }

  /** Applies one update with gradients in the order of `params`. */
  apply(grads: tf.Tensor[], lr: number): void {
    if (grads.length !== this.params.length) throw new Error(`AdamW.apply: got ${grads.length} gradients for ${this.params.length} parameters`);
    const { beta1, beta2, epsilon, weightDecay } = this.options;
    this.t++;
    this.params.forEach(({ variable: p, name }, i) => {
      const g = grads[i];
      if (g.shape.join(',') !== p.shape.join(',')) throw new Error(`AdamW.apply: gradient of ${name} has shape [${g.shape}], expected [${p.shape}]`);
      // One fused kernel with the native kernels on wasm, else the formula above in tfjs ops.
      adamWUpdate(p, this.m[i], this.v[i], g, { lr, beta1, beta2, epsilon, weightDecay: p.rank >= 2 ? weightDecay : 0, step: this.t });
    });
  }

  /** The moments as named float32 arrays: `exp_avg/<name>` and `exp_avg_sq/<name>` (torch's names). */
  stateTensors(): OptimizerTensors {
    const out: OptimizerTensors = new Map();
    this.params.forEach(({ name, variable }, i) => {
      out.set(`exp_avg/${name}`, { shape: variable.shape.slice(), data: (this.m[i].dataSync() as Float32Array).slice() });
      out.set(`exp_avg_sq/${name}`, { shape: variable.shape.slice(), data: (this.v[i].dataSync() as Float32Array).slice() });
    });
    return out;
  }

  /** Restores t and the moments; every parameter must be present with its shape. `source` prefixes errors. */
  loadState(t: number, tensors: OptimizerTensors, source: string): void {
    if (!Number.isInteger(t) || t < 0) throw new Error(`${source}: optimizer step ${JSON.stringify(t)} is not a non-negative integer`);
    const expected = new Set<string>();
    this.params.forEach(({ name, variable }, i) => {
      for (const [prefix, target] of [['exp_avg', this.m[i]], ['exp_avg_sq', this.v[i]]] as const) {
        const key = `${prefix}/${name}`;
        expected.add(key);
        const saved = tensors.get(key);
        if (!saved) throw new Error(`${source}: optimizer state ${key} is missing`);
        if (saved.shape.join(',') !== variable.shape.join(',')) throw new Error(`${source}: optimizer state ${key} has shape [${saved.shape}], expected [${variable.shape}]`);
        target.assign(tf.tensor(saved.data, saved.shape, 'float32'));
      }
    });
    for (const key of tensors.keys()) if (!expected.has(key)) throw new Error(`${source}: unexpected optimizer state ${key} (not a trainable parameter of this run)`);
    this.t = t;
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}
