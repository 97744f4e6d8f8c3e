/**
 * Support for the evaluation specs: an independent reference for the model's
 * log-probs, from one forward pass's logits with the log-softmax done in
 * float64 on the host (not through sequenceTokenLogProbs).
 */
import type { LlamaModel } from '@posttrain/model';
import { forwardLogits, padBatch } from '@posttrain/model';

/** log pi(reply | prompt) summed over the reply's tokens, from the logits of prompt + reply, in float64. */
export function float64ReplyLogProb(model: LlamaModel, promptIds: readonly number[], replyIds: readonly number[]): number {
  const ids = [...promptIds, ...replyIds];
  const logits = forwardLogits(model, padBatch([ids])).arraySync()[0];
  let lp = 0;
  for (let t = promptIds.length; t < ids.length; t++) {
    const row = logits[t - 1];
    const max = Math.max(...row);
    const z = row.reduce((a, x) => a + Math.exp(x - max), 0);
    lp += row[ids[t]] - max - Math.log(z);
  }
  return lp;
}
