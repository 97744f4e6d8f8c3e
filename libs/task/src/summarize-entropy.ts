import { ExtractionMode } from '@posttrain/proto';
import { canonicalDecimal, extractAnswer } from '@posttrain/rewards';
import { ANSWER_MARKER } from './solve-problem';

export interface TokenEntropySummary {
  readonly sequences: number;
  readonly tokens: number;
  /** Token-weighted mean entropy, nats per token. */
  readonly meanPerToken: number;
  /** Mean over sequences of each sequence's mean entropy per token (every reply counts once, long or short). */
  readonly meanPerSequence: number;
}

/**
 * Summarises per-token entropies of the policy (nats; one array per
 * generated reply, e.g. from the sampler's logits): lower after DPO means the
 * output distribution is more concentrated (the third claim). Empty replies
 * count in `sequences` but not in the per-sequence mean.
 */
export function summarizeTokenEntropy(entropies: readonly (readonly number[])[]): TokenEntropySummary {
  if (!Array.isArray(entropies) || entropies.length === 0) throw new Error(`entropies: got ${JSON.stringify(entropies)}, expected a non-empty list (one array per reply)`);
  let tokens = 0;
  let total = 0;
  let seqSum = 0;
  let seqCount = 0;
  entropies.forEach((row, i) => {
    if (!Array.isArray(row)) throw new Error(`entropies[${i}]: got ${JSON.stringify(row)}, expected an array of per-token entropies`);
    let rowSum = 0;
    row.forEach((h, t) => {
      if (typeof h !== 'number' || !Number.isFinite(h) || h < 0) throw new Error(`entropies[${i}][${t}]: got ${JSON.stringify(h)}, expected a finite number >= 0 (nats)`);
      rowSum += h;
    });
    tokens += row.length;
    total += rowSum;
    if (row.length > 0) {
      seqSum += rowSum / row.length;
      seqCount++;
    }
  });
  return { sequences: entropies.length, tokens, meanPerToken: tokens === 0 ? 0 : total / tokens, meanPerSequence: seqCount === 0 ? 0 : seqSum / seqCount };
}

export interface AnswerEntropySummary {
  readonly prompts: number;
  /** Mean over prompts of the entropy (nats) of the empirical distribution of final answers among its samples. */
  readonly meanEntropy: number;
  /** Mean over prompts of the number of distinct final answers. */
  readonly meanDistinct: number;
  /** Per prompt: entropy in nats. */
  readonly entropies: readonly number[];
}

/** The final answer of a reply, canonicalised ("007" and "7" agree); replies without an answer line share the key "(none)". */
function answerKey(completion: string): string {
  const raw = extractAnswer(completion, { mode: ExtractionMode.AFTER_MARKER, pattern: ANSWER_MARKER });
  if (raw === null) return '(none)';
  return canonicalDecimal(raw) ?? raw;
}

/**
 * How spread a model's answers are: for each prompt, several sampled
 * replies; the entropy of which final answer they give, H = -sum_a p(a) ln p(a)
 * with p the empirical frequency. Model-agnostic (needs only text), so it
 * compares the SFT and DPO policies on the same footing as accuracy.
 */
export function summarizeAnswerEntropy(samplesPerPrompt: readonly (readonly string[])[]): AnswerEntropySummary {
  if (!Array.isArray(samplesPerPrompt) || samplesPerPrompt.length === 0) {
    throw new Error(`samplesPerPrompt: got ${JSON.stringify(samplesPerPrompt)}, expected a non-empty list (one list of sampled replies per prompt)`);
  }
  const entropies: number[] = [];
  let distinctSum = 0;
  samplesPerPrompt.forEach((group, i) => {
    if (!Array.isArray(group) || group.length === 0) throw new Error(`samplesPerPrompt[${i}]: got ${JSON.stringify(group)}, expected a non-empty list of replies`);
    const counts = new Map<string, number>();
    group.forEach((reply, j) => {
      if (typeof reply !== 'string') throw new Error(`samplesPerPrompt[${i}][${j}]: got ${JSON.stringify(reply)}, expected a string`);
      const key = answerKey(reply);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    });
    let h = 0;
    for (const c of counts.values()) {
      const p = c / group.length;
      h -= p * Math.log(p);
    }
    entropies.push(h === 0 ? 0 : h);
    distinctSum += counts.size;
  });
  const meanEntropy = entropies.reduce((s, h) => s + h, 0) / entropies.length;
  return { prompts: entropies.length, meanEntropy, meanDistinct: distinctSum / entropies.length, entropies };
}
