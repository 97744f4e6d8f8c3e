import * as tf from '@tensorflow/tfjs-core';
import { padBatch, rewardNormalization, sequenceScores } from '@posttrain/model';
import { RewardValidationError, type RewardModelFn } from '@posttrain/rewards';
import type { ChatMessage } from '@posttrain/tokenizer';
import type { ServedModel } from './served-model';

/** What a reward model scores of an item (the wire's ScoreItem has these fields). */
export interface RewardModelItem {
  prompt: string;
  promptMessages: readonly ChatMessage[];
  completion: string;
}

export interface RewardModelScorerOptions {
  /** Items per forward pass (default 32). */
  batchSize?: number;
}

/**
 * The token ids a reward model scores for an item: with prompt_messages, the
 * chat template rendered with the completion as the final assistant turn (as
 * TRL's reward trainer formats conversational data); otherwise prompt text
 * followed directly by the completion text.
 */
export function rewardModelInput(served: ServedModel, item: RewardModelItem, field: string): number[] {
  const tok = served.tokenizer;
  if (!tok) throw new Error(`${served.dir}: the reward model has no tokenizer.json, so text items cannot be scored`);
  let ids: number[];
  try {
    ids = item.promptMessages.length > 0
      ? tok.encodeChatIds([...item.promptMessages, { role: 'assistant', content: item.completion }], { addGenerationPrompt: false })
      : tok.encode(item.prompt + item.completion);
  } catch (e) {
    throw new RewardValidationError(item.promptMessages.length > 0 ? `${field}.prompt_messages` : `${field}.prompt`, `cannot be tokenised: ${(e as Error).message}`);
  }
  const c = served.model.config;
  if (ids.length === 0) throw new RewardValidationError(`${field}.completion`, 'prompt and completion tokenise to no tokens; nothing to score');
  if (ids.length > c.maxPositionEmbeddings) throw new RewardValidationError(field, `prompt + completion is ${ids.length} tokens, more than the reward model's max_position_embeddings ${c.maxPositionEmbeddings}`);
  const bad = ids.find((id) => id >= c.vocabSize);
  if (bad !== undefined) throw new RewardValidationError(field, `tokenises to id ${bad}, outside the reward model's vocabulary of ${c.vocabSize}`);
  return ids;
}

/**
 * The RewardModelFn that @posttrain/rewards injects: the scalar head at the
 * last token of each item's rendered (prompt, completion), in batches;
 * standardised as (score - mean) / std when the model's config.json says
 * normalize_reward (OpenRLHF's reward normalisation, with the statistics its
 * training recorded).
 */
export function createRewardModelFn(served: ServedModel, options: RewardModelScorerOptions = {}): RewardModelFn {
  if (!served.model.heads.score) throw new Error(`${served.dir}: the model has no score head (score.weight); a reward model is a *ForSequenceClassification checkpoint`);
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize: got ${batchSize}, expected an integer >= 1`);
  const norm = rewardNormalization(served.model.config);
  return async (items) => {
    const inputs = items.map((item, i) => rewardModelInput(served, item, `items[${i}]`));
    const scores: number[] = [];
    for (let s = 0; s < inputs.length; s += batchSize) {
      if (s > 0) await new Promise<void>((r) => setImmediate(r));
      const t = sequenceScores(served.model, padBatch(inputs.slice(s, s + batchSize), 0));
      const raw = t.dataSync() as Float32Array;
      for (const r of raw) scores.push(norm ? (r - norm.mean) / norm.std : r);
      tf.dispose(t);
    }
    return scores;
  };
}
