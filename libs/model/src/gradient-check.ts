/**
 * Test support (not exported): checks the model's analytic gradients (tf.variableGrads through
 * every custom gradient) against central finite differences of the float64 reference forward pass.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from './llama-model';
import { isTransposedWeight } from './llama-model';
import { tokenLogProbs } from './token-log-probs';
import { referenceLogProbs } from './test-reference';
import type { HfWeights } from './test-reference';

/** Probes: [HF tensor name, flat HF-layout index]. */
export function checkGradients(model: LlamaModel, w: HfWeights, ids: number[], probes: [string, number][]): void {
  const { grads } = tf.variableGrads(() => tf.sum(tokenLogProbs(model, { inputIds: [ids] })) as tf.Scalar, model.trainableVariables());
  const eps = 1e-3;
  for (const [name, index] of probes) {
    const t = w.get(name)!;
    const v = model.weight(name);
    const g = grads[v.name].dataSync();
    // HF [out, in] index (o, i) is our [in, out] index (i, o).
    let analytic: number;
    if (isTransposedWeight(name)) {
      const [outDim, inDim] = t.shape;
      const o = Math.floor(index / inDim);
      const i = index % inDim;
      analytic = g[i * outDim + o];
    } else {
      analytic = g[index];
    }
    const original = t.data[index];
    const f = (x: number) => {
      t.data[index] = x;
      return referenceLogProbs(model.config, w, ids).reduce((a, b) => a + b, 0);
    };
    const numeric = (f(original + eps) - f(original - eps)) / (2 * eps);
    t.data[index] = original;
    // float32 forward/backward vs float64 central difference (truncation error ~eps^2): 2e-3 absolute + 1% relative.
    assert.ok(Math.abs(analytic - numeric) <= 2e-3 + 0.01 * Math.abs(numeric), `d/d ${name}[${index}]: analytic ${analytic} vs numeric ${numeric}`);
  }
  tf.dispose(Object.values(grads));
}

export const GRADIENT_PROBES: [string, number][] = [
  ['model.embed_tokens.weight', 7 * 16 + 3],
  ['model.layers.0.self_attn.q_proj.weight', 37],
  ['model.layers.0.self_attn.k_proj.weight', 21],
  ['model.layers.1.self_attn.v_proj.weight', 50],
  ['model.layers.1.self_attn.o_proj.weight', 99],
  ['model.layers.0.mlp.gate_proj.weight', 120],
  ['model.layers.1.mlp.up_proj.weight', 5],
  ['model.layers.0.mlp.down_proj.weight', 77],
  ['model.layers.1.input_layernorm.weight', 4],
  ['model.norm.weight', 9],
  ['lm_head.weight', 3 * 16 + 8],
];
