/**
 * The scalar head (value / reward), in HF's *ForSequenceClassification layout:
 * `score.weight` [1, hidden] applied to the final hidden state. A reward is the
 * score at each row's last non-padding token; a critic uses every position.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@posttrain/random';
import { LlamaModel, uniqueVariableName } from './llama-model';
import type { TokenBatch } from './token-batch';
import { toForwardTokens } from './token-batch';
import { forwardHidden, scoreHeadValues } from './transformer-forward';

/** Per-position scalar outputs [B, T] (0 at padding); differentiable, call inside tf.tidy / tf.variableGrads. */
export function tokenValues(model: LlamaModel, batch: TokenBatch, options: { dropoutSeed?: number } = {}): tf.Tensor2D {
  const tokens = toForwardTokens(batch, model.config.vocabSize);
  return tf.tidy(() => {
    const { hidden } = forwardHidden(model, tokens, { dropoutSeed: options.dropoutSeed });
    const values = scoreHeadValues(model, hidden); // (N,)
    const mask = tf.tensor1d(Float32Array.from(tokens.mask));
    return tf.reshape(tf.mul(values, mask), [tokens.batch, tokens.length]) as tf.Tensor2D;
  });
}

/** One score per row [B]: the score head at the row's last real token (left or right padding). */
export function sequenceScores(model: LlamaModel, batch: TokenBatch, options: { dropoutSeed?: number } = {}): tf.Tensor1D {
  if (batch.segmentIds !== undefined) throw new Error('segmentIds: sequenceScores gives one score per row, so it takes unpacked rows only (omit segmentIds)');
  const tokens = toForwardTokens(batch, model.config.vocabSize);
  const { batch: B, length: T, mask } = tokens;
  const pick = new Float32Array(B * T); // one-hot of each row's last real token (selection without a gather gradient)
  for (let b = 0; b < B; b++) {
    let last = -1;
    for (let t = 0; t < T; t++) if (mask[b * T + t]) last = t;
    if (last < 0) throw new Error(`attentionMask[${b}]: row has no real token to score`);
    pick[b * T + last] = 1;
  }
  return tf.tidy(() => {
    const { hidden } = forwardHidden(model, tokens, { dropoutSeed: options.dropoutSeed });
    const values = scoreHeadValues(model, hidden); // (N,)
    return tf.sum(tf.reshape(tf.mul(values, tf.tensor1d(pick)), [B, T]), 1) as tf.Tensor1D;
  });
}

/**
 * A new model with a freshly initialised score head (N(0, initializer_range)) and copies of `model`'s
 * weights, as HF's AutoModelForSequenceClassification.from_pretrained(sft_checkpoint) builds a reward
 * model. With keepLmHead the copy keeps next-token logits too (a policy with a value head).
 */
export function withScoreHead(model: LlamaModel, options: { seed: number | string; keepLmHead?: boolean }): LlamaModel {
  const keepLm = options.keepLmHead ?? false;
  const c = model.config;
  const config = keepLm ? c : { ...c, architecture: c.architecture.replace(/ForCausalLM$/, 'ForSequenceClassification') };
  const weights = new Map<string, tf.Variable>();
  for (const [name, v] of model.weights) {
    if (name === 'lm_head.weight' && !keepLm) continue;
    if (name === 'score.weight') continue;
    weights.set(name, tf.tidy(() => tf.variable(tf.clone(v), true, uniqueVariableName(name))));
  }
  const rng = new Rng(options.seed);
  const score = new Float32Array(c.hiddenSize);
  for (let i = 0; i < score.length; i++) score[i] = rng.normal(0, c.initializerRange);
  weights.set('score.weight', tf.variable(tf.tensor2d(score, [c.hiddenSize, 1]), true, uniqueVariableName('score.weight')));
  const out = new LlamaModel(config, { lm: keepLm && model.heads.lm, score: true }, weights, new Map(model.assets));
  out.generationDefaults = { ...model.generationDefaults };
  return out;
}
