/**
 * Test support (not exported from the package): a plain-loop reference forward
 * pass of the Llama family written straight from the HF modeling code, in
 * float64, on HF-layout weights ([out, in] linears), and a small deterministic
 * weight generator. Spec files compare the tfjs model against it.
 */
import type { ModelConfig } from './model-config';
import type { ModelHeads } from './llama-model';
import { expectedWeightShapes } from './llama-model';

export type HfWeights = Map<string, { shape: number[]; data: Float32Array }>;

/** Deterministic weights for tests: a 32-bit LCG, values uniform in [-scale, scale]; norms near 1. */
export function makeTestWeights(c: ModelConfig, heads: ModelHeads, seed: number, scale = 0.3): HfWeights {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const out: HfWeights = new Map();
  for (const [name, shape] of expectedWeightShapes(c, heads)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isNorm = name.endsWith('norm.weight');
    for (let i = 0; i < n; i++) data[i] = isNorm ? 1 + (next() - 0.5) * 0.4 : (next() * 2 - 1) * scale;
    out.set(name, { shape, data });
  }
  return out;
}

function linear(w: HfWeights, name: string, x: number[], bias = false): number[] {
  const W = w.get(`${name}.weight`)!;
  const [outDim, inDim] = W.shape;
  const b = bias ? w.get(`${name}.bias`) : undefined;
  const y = new Array<number>(outDim).fill(0);
  for (let o = 0; o < outDim; o++) {
    let acc = b ? b.data[o] : 0;
    for (let i = 0; i < inDim; i++) acc += W.data[o * inDim + i] * x[i];
    y[o] = acc;
  }
  return y;
}

function rmsNorm(x: number[], weight: Float32Array, eps: number): number[] {
  let ms = 0;
  for (const v of x) ms += v * v;
  ms /= x.length;
  const inv = 1 / Math.sqrt(ms + eps);
  return x.map((v, i) => v * inv * weight[i]);
}

/** HF apply_rotary_pos_emb on one head vector: x*cos + rotate_half(x)*sin, rotate_half(x) = cat(-x2, x1). */
function rope(x: number[], pos: number, theta: number): number[] {
  const e = x.length;
  const h = e / 2;
  const out = new Array<number>(e);
  for (let j = 0; j < h; j++) {
    const angle = pos / Math.pow(theta, (2 * j) / e);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    out[j] = x[j] * c - x[j + h] * s;
    out[j + h] = x[j + h] * c + x[j] * s;
  }
  return out;
}

/**
 * Final hidden states [T][D] of one unpadded sequence (positions 0..T-1). With `segmentIds` ([T]) the
 * sequence is a packed row: token t attends only to tokens k <= t with segmentIds[k] = segmentIds[t],
 * and its rotary position is the number of earlier tokens of its segment.
 */
export function referenceHidden(c: ModelConfig, w: HfWeights, ids: number[], segmentIds?: number[]): number[][] {
  const seg = segmentIds ?? ids.map(() => 0);
  const pos = seg.map((s, t) => seg.slice(0, t).filter((x) => x === s).length);
  const D = c.hiddenSize;
  const E = c.headDim;
  const H = c.numHeads;
  const G = c.numKvHeads;
  const emb = w.get('model.embed_tokens.weight')!.data;
  let h = ids.map((id) => Array.from(emb.subarray(id * D, (id + 1) * D)));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    const xs = h.map((v) => rmsNorm(v, w.get(`${p}.input_layernorm.weight`)!.data, c.rmsNormEps));
    // Qwen3Attention: q_norm / k_norm (RMSNorm over head_dim) on each head of q_proj / k_proj, before RoPE.
    const perHead = (v: number[], heads: number, norm: string) =>
      Array.from({ length: heads }, (_, h) => rmsNorm(v.slice(h * E, (h + 1) * E), w.get(`${p}.self_attn.${norm}.weight`)!.data, c.rmsNormEps)).flat();
    const qs = xs.map((x) => linear(w, `${p}.self_attn.q_proj`, x, c.qkvBias)).map((q) => (c.qkNorm ? perHead(q, H, 'q_norm') : q));
    const ks = xs.map((x) => linear(w, `${p}.self_attn.k_proj`, x, c.qkvBias)).map((k) => (c.qkNorm ? perHead(k, G, 'k_norm') : k));
    const vs = xs.map((x) => linear(w, `${p}.self_attn.v_proj`, x, c.qkvBias));
    const attnOut = ids.map(() => new Array<number>(H * E).fill(0));
    for (let head = 0; head < H; head++) {
      const g = Math.floor(head / (H / G)); // repeat_kv
      for (let t = 0; t < ids.length; t++) {
        const q = rope(qs[t].slice(head * E, (head + 1) * E), pos[t], c.ropeTheta);
        const scores: number[] = [];
        for (let k = 0; k <= t; k++) {
          if (seg[k] !== seg[t] || (c.slidingWindow !== null && pos[t] - pos[k] >= c.slidingWindow)) { scores.push(-Infinity); continue; }
          const kv = rope(ks[k].slice(g * E, (g + 1) * E), pos[k], c.ropeTheta);
          let dot = 0;
          for (let j = 0; j < E; j++) dot += q[j] * kv[j];
          scores.push(dot / Math.sqrt(E));
        }
        const m = Math.max(...scores);
        const ex = scores.map((s) => Math.exp(s - m));
        const z = ex.reduce((a, b) => a + b, 0);
        for (let k = 0; k <= t; k++) {
          for (let j = 0; j < E; j++) attnOut[t][head * E + j] += (ex[k] / z) * vs[k][g * E + j];
        }
      }
    }
    h = h.map((v, t) => {
      const o = linear(w, `${p}.self_attn.o_proj`, attnOut[t], c.oBias);
      return v.map((a, i) => a + o[i]);
    });
    h = h.map((v) => {
      const y = rmsNorm(v, w.get(`${p}.post_attention_layernorm.weight`)!.data, c.rmsNormEps);
      const gate = linear(w, `${p}.mlp.gate_proj`, y);
      const up = linear(w, `${p}.mlp.up_proj`, y);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const d = linear(w, `${p}.mlp.down_proj`, act);
      return v.map((a, i) => a + d[i]);
    });
  }
  return h.map((v) => rmsNorm(v, w.get('model.norm.weight')!.data, c.rmsNormEps));
}

/** Logits [T][V] of one sequence (a packed row with `segmentIds`, see referenceHidden). */
export function referenceLogits(c: ModelConfig, w: HfWeights, ids: number[], segmentIds?: number[]): number[][] {
  const head = c.tieWordEmbeddings ? 'model.embed_tokens' : 'lm_head';
  return referenceHidden(c, w, ids, segmentIds).map((x) => linear(w, head, x));
}

/**
 * log p(ids[t] | ids[<t]) for t = 1..T-1, at a temperature. With `segmentIds`, a token whose
 * predecessor is in another segment (the first token of a packed example) gets 0.
 */
export function referenceLogProbs(c: ModelConfig, w: HfWeights, ids: number[], temperature = 1, segmentIds?: number[]): number[] {
  const logits = referenceLogits(c, w, ids, segmentIds);
  const out: number[] = [];
  for (let t = 1; t < ids.length; t++) {
    if (segmentIds && segmentIds[t] !== segmentIds[t - 1]) {
      out.push(0);
      continue;
    }
    const z = logits[t - 1].map((v) => v / temperature);
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    out.push(z[ids[t]] - lse);
  }
  return out;
}

/** Scalar head output at every position [T]. */
export function referenceScores(c: ModelConfig, w: HfWeights, ids: number[]): number[] {
  return referenceHidden(c, w, ids).map((x) => linear(w, 'score', x)[0]);
}
