import { decodeTensorAs, DType, ReferenceModelService } from '@posttrain/proto';
import { createClient } from '@posttrain/rpc';
import type { ReferenceLogProbsFn } from '@posttrain/training';

/**
 * DPO's reference log-probs from a ReferenceModel service: each sequence is
 * split at its prompt length into (prompt_ids, completion_ids), and the
 * zero-padded [B, T] answer is cut back to each completion's length.
 * libs/training calls this once per dataset and caches the sums.
 */
export function referenceServiceLogProbs(address: string, batchSize = 64): ReferenceLogProbsFn {
  const client = createClient(ReferenceModelService, address, { deadlineMs: 300_000 });
  return async ({ sequences, promptLengths }) => {
    const out: number[][] = [];
    for (let start = 0; start < sequences.length; start += batchSize) {
      const seqs = sequences.slice(start, start + batchSize).map((ids, i) => ({ promptIds: ids.slice(0, promptLengths[start + i]), completionIds: ids.slice(promptLengths[start + i]) }));
      const res = await client.unary('computeLogProbs', { sequences: seqs, returnEntropies: false });
      if (!res.logprobs) throw new Error(`reference service at ${address} returned no logprobs tensor`);
      const t = decodeTensorAs(res.logprobs, DType.DTYPE_FLOAT32, 'logprobs');
      const width = t.shape[1] ?? 0;
      res.completionLengths.forEach((len, i) => {
        if (len !== seqs[i].completionIds.length) throw new Error(`reference service at ${address}: completion_lengths[${i}] is ${len}, expected ${seqs[i].completionIds.length}`);
        out.push(Array.from(t.data.subarray(i * width, i * width + len)));
      });
    }
    return out;
  };
}
