import * as tf from '@tensorflow/tfjs-core';

/**
 * A Llama-shaped training step written the straightforward way in tfjs
 * (no fused or hand-tuned ops), used to benchmark the backend and to check
 * that every kernel such a step needs exists and agrees across backends. It
 * is a measuring instrument for this package, not the project's model (that
 * lives in @posttrain/model).
 *
 * tokens → embedding → L × [RMSNorm → causal MHA with RoPE → residual →
 * RMSNorm → SwiGLU MLP → residual] → RMSNorm → LM head → log-softmax NLL.
 */
export interface LlamaStepConfig {
  vocab: number;
  dim: number;
  heads: number;
  hidden: number;
  layers: number;
  batch: number;
  seq: number;
}

export interface LlamaStep {
  params: tf.Variable[];
  /** One forward+backward+Adam update; returns the loss before the update. */
  step(): number;
  /** Loss and gradients without updating (for cross-backend comparison). */
  lossAndGrads(): { loss: number; grads: Float32Array[] };
  /** FLOPs of the matmuls of one forward+backward (3x forward). */
  flops: number;
  dispose(): void;
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function buildLlamaStep(cfg: LlamaStepConfig, seed = 1): LlamaStep {
  const { vocab: V, dim: D, heads: H, hidden: F, layers: L, batch: B, seq: T } = cfg;
  if (D % H !== 0 || (D / H) % 2 !== 0) throw new Error(`llama step: dim ${D} must split into ${H} heads of even size`);
  const hs = D / H;
  const rnd = lcg(seed);
  // Variables get tfjs's automatic unique names (gradients are keyed by name).
  const init = (shape: number[], scale: number): tf.Variable => {
    const n = shape.reduce((p, d) => p * d, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = (rnd() * 2 - 1) * scale;
    return tf.variable(tf.tensor(v, shape));
  };
  const ones = (n: number): tf.Variable => tf.variable(tf.ones([n]));
  const emb = init([V, D], 0.5);
  const layers = Array.from({ length: L }, () => ({
    n1: ones(D),
    wq: init([D, D], 1 / Math.sqrt(D)),
    wk: init([D, D], 1 / Math.sqrt(D)),
    wv: init([D, D], 1 / Math.sqrt(D)),
    wo: init([D, D], 1 / Math.sqrt(D)),
    n2: ones(D),
    w1: init([D, F], 1 / Math.sqrt(D)),
    w3: init([D, F], 1 / Math.sqrt(D)),
    w2: init([F, D], 1 / Math.sqrt(F)),
  }));
  const nf = ones(D);
  const head = init([D, V], 1 / Math.sqrt(D));
  const params: tf.Variable[] = [emb, ...layers.flatMap((p) => Object.values(p)), nf, head];

  const tokens = Int32Array.from({ length: B * (T + 1) }, () => Math.floor(rnd() * V));
  const inputIds = tf.tensor2d(
    Int32Array.from({ length: B * T }, (_, i) => tokens[Math.floor(i / T) * (T + 1) + (i % T)]),
    [B, T],
    'int32',
  );
  const targets = tf.tensor1d(
    Int32Array.from({ length: B * T }, (_, i) => tokens[Math.floor(i / T) * (T + 1) + (i % T) + 1]),
    'int32',
  );
  // RoPE tables [T, hs/2] and the additive causal mask [T, T].
  const half = hs / 2;
  const cosV = new Float32Array(T * half);
  const sinV = new Float32Array(T * half);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = t / Math.pow(10000, (2 * i) / hs);
      cosV[t * half + i] = Math.cos(angle);
      sinV[t * half + i] = Math.sin(angle);
    }
  }
  const cos = tf.tensor2d(cosV, [T, half]);
  const sin = tf.tensor2d(sinV, [T, half]);
  const maskV = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskV[i * T + j] = -1e9;
  const mask = tf.tensor2d(maskV, [T, T]);
  const constants = [inputIds, targets, cos, sin, mask];

  const rmsNorm = (x: tf.Tensor, g: tf.Tensor): tf.Tensor =>
    tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))), g);
  const rope = (x: tf.Tensor): tf.Tensor => {
    // x [B,H,T,hs]: rotate (x1, x2) halves by position-dependent angles.
    const x1 = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, half]);
    const x2 = tf.slice(x, [0, 0, 0, half], [-1, -1, -1, half]);
    return tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x1, sin), tf.mul(x2, cos))], -1);
  };
  // x[B,T,in] @ W[in,out] as one 2-D product, the way tfjs-layers' Dense
  // does it (the stock BatchMatMul gradient cannot handle a broadcast W).
  const linear = (x: tf.Tensor, w: tf.Tensor): tf.Tensor =>
    tf.reshape(tf.matMul(tf.reshape(x, [B * T, w.shape[0]]), w), [B, T, w.shape[w.rank - 1]]);
  const heads = (x: tf.Tensor): tf.Tensor => tf.transpose(tf.reshape(x, [B, T, H, hs]), [0, 2, 1, 3]);

  const lossFn = (): tf.Scalar => {
    let x = tf.gather(emb, inputIds); // [B,T,D]
    for (const p of layers) {
      const h = rmsNorm(x, p.n1);
      const q = rope(heads(linear(h, p.wq))); // [B,H,T,hs]
      const k = rope(heads(linear(h, p.wk)));
      const v = heads(linear(h, p.wv));
      const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hs)), mask)); // [B,H,T,T]
      const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B, T, D]);
      x = tf.add(x, linear(y, p.wo));
      const h2 = rmsNorm(x, p.n2);
      const a = linear(h2, p.w1);
      const gate = tf.mul(a, tf.sigmoid(a)); // SiLU
      x = tf.add(x, linear(tf.mul(gate, linear(h2, p.w3)), p.w2));
    }
    const logits = tf.reshape(linear(rmsNorm(x, nf), head), [B * T, V]);
    const logp = tf.logSoftmax(logits);
    return tf.neg(tf.mean(tf.sum(tf.mul(logp, tf.oneHot(targets, V)), -1))) as tf.Scalar;
  };

  const optimizer = tf.train.adam(1e-3);
  const mmFlops = B * T * (L * (4 * D * D + 3 * D * F) + D * V) + L * 2 * B * H * T * T * hs;
  return {
    params,
    flops: 3 * 2 * mmFlops,
    step: () => {
      const loss = optimizer.minimize(lossFn, true, params) as tf.Scalar;
      const value = loss.dataSync()[0];
      loss.dispose();
      return value;
    },
    lossAndGrads: () => {
      const { value, grads } = tf.variableGrads(lossFn, params);
      const out = { loss: value.dataSync()[0], grads: params.map((p) => grads[p.name].dataSync() as Float32Array) };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    },
    dispose: () => {
      optimizer.dispose();
      tf.dispose([...params, ...constants]);
    },
  };
}
