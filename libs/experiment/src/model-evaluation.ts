/**
 * The model side of evaluation: greedy replies for answer accuracy, sequence
 * log-probs of preference pairs for ranking accuracy, and sampled replies with
 * their per-token entropies for how concentrated the output distribution is.
 * Tokenization goes through libs/data's tokenizePrompt / tokenizePreference,
 * the same code the trainer uses, so a pair is scored on the tokens DPO saw,
 * through the reply's stop token (throughStop).
 */
import type { DataLine, PreferenceExample } from '@posttrain/data';
import { tokenizePreference, tokenizePrompt } from '@posttrain/data';
import type { LlamaModel } from '@posttrain/model';
import { generate, sequenceTokenLogProbs } from '@posttrain/model';
import type { AnswerEntropySummary, PreferenceRanking, TokenEntropySummary } from '@posttrain/task';
import { rankPreferences, summarizeAnswerEntropy, summarizeTokenEntropy } from '@posttrain/task';
import type { ChatMessage, Tokenizer } from '@posttrain/tokenizer';
import type { CompleteFn } from './evaluate-answers';

export interface GenerationSettings {
  maxNewTokens: number;
  /** 0 = greedy (the default for accuracy). */
  temperature?: number;
  seed?: number;
  /** Rows per generate call; default 32. */
  batchSize?: number;
}

function promptIds(tokenizer: Tokenizer, prompt: string | ChatMessage[], index: number): number[] {
  const r = tokenizePrompt({ line: index + 1, record: typeof prompt === 'string' ? { format: 'prompt-only', style: 'standard', prompt, groundTruth: null } : { format: 'prompt-only', style: 'conversational', prompt, groundTruth: null } }, tokenizer, { maxLength: null, truncation: 'truncate' });
  if (!r.ok) throw new Error(`prompt ${index}: ${r.reason}`);
  return r.example.promptIds;
}

/** Replies of `model` (the chat template applied to message prompts; special tokens dropped from the text). */
export function modelCompleteFn(model: LlamaModel, tokenizer: Tokenizer, settings: GenerationSettings): CompleteFn {
  const batchSize = settings.batchSize ?? 32;
  let call = 0;
  return async (prompts) => {
    const out: string[] = [];
    for (let s = 0; s < prompts.length; s += batchSize) {
      const ids = prompts.slice(s, s + batchSize).map((p, i) => promptIds(tokenizer, p, s + i));
      const completions = generate(model, ids, { maxNewTokens: settings.maxNewTokens, temperature: settings.temperature ?? 0, seed: `${settings.seed ?? 0}-${call++}` });
      for (const c of completions) out.push(tokenizer.decode(c.tokens, { skipSpecialTokens: true }));
    }
    return out;
  };
}

/** Summed log-probs and lengths (tokens) of each pair's chosen and rejected reply. */
export interface PairLogProbs {
  chosenLogProbs: number[];
  rejectedLogProbs: number[];
  chosenLengths: number[];
  rejectedLengths: number[];
}

/** Tokenizes preference lines as the DPO trainer does; a line the template cannot split is an error naming it. */
export function tokenizePairs(lines: readonly DataLine[], tokenizer: Tokenizer, file = 'data'): PreferenceExample[] {
  return lines.map((l) => {
    const r = tokenizePreference(l, tokenizer, { maxLength: null, truncation: 'truncate' });
    if (!r.ok) throw new Error(`${file}:${l.line}: ${r.reason}`);
    return r.example;
  });
}

/**
 * A reply as generation produces it: its tokens up to and including the first
 * stop token, all of them when it has none. A chat template appends tokens
 * after the end of the turn (ChatML a newline after <|im_end|>) that the
 * policy never samples and SFT does not train (the assistant mask, and the
 * completion loss of libs/data's tokenizeSft, end at the end-of-turn token),
 * so their log-prob says nothing about which reply the policy prefers: it is
 * untrained, and moves with the position where the reply ended.
 */
export function throughStop(ids: readonly number[], stopTokens: ReadonlySet<number>): number[] {
  const i = ids.findIndex((id) => stopTokens.has(id));
  return i < 0 ? [...ids] : ids.slice(0, i + 1);
}

/**
 * log pi(y|x) summed over each reply's tokens through its stop token (see
 * throughStop; by default the model's EOS ids, where generation stops),
 * `batchSize` sequences per forward pass.
 */
export function pairLogProbs(model: LlamaModel, pairs: readonly PreferenceExample[], batchSize = 16, stopTokens: readonly number[] = model.generationDefaults.eosTokenIds): PairLogProbs {
  const stops = new Set(stopTokens);
  const sequences: number[][] = [];
  const promptLengths: number[] = [];
  const chosenLengths: number[] = [];
  const rejectedLengths: number[] = [];
  for (const p of pairs) {
    const chosen = throughStop(p.chosenIds, stops);
    const rejected = throughStop(p.rejectedIds, stops);
    sequences.push([...p.promptIds, ...chosen], [...p.promptIds, ...rejected]);
    promptLengths.push(p.promptIds.length, p.promptIds.length);
    chosenLengths.push(chosen.length);
    rejectedLengths.push(rejected.length);
  }
  const lps = sequenceTokenLogProbs(model, sequences, { promptLengths, batchSize });
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  return {
    chosenLogProbs: pairs.map((_, i) => sum(lps[2 * i])),
    rejectedLogProbs: pairs.map((_, i) => sum(lps[2 * i + 1])),
    chosenLengths,
    rejectedLengths,
  };
}

export interface PreferenceEvaluation {
  n: number;
  /** Ranked by summed log-prob of the reply. */
  summed: PreferenceRanking;
  /** Ranked by mean log-prob per token (length-neutral). */
  perToken: PreferenceRanking;
  /** Ranked by the DPO implicit reward log pi - log pi_ref, when a reference was given. */
  implicitReward: PreferenceRanking | null;
}

/** How often the policy prefers the chosen reply (claim 3), summed, per token and (with a reference) by implicit reward. */
export function evaluatePreferences(policy: PairLogProbs, reference: PairLogProbs | null = null): PreferenceEvaluation {
  const summed = rankPreferences({ chosenLogProbs: policy.chosenLogProbs, rejectedLogProbs: policy.rejectedLogProbs });
  const perToken = rankPreferences({ ...policy });
  const implicitReward = reference
    ? rankPreferences({ chosenLogProbs: policy.chosenLogProbs, rejectedLogProbs: policy.rejectedLogProbs, chosenRefLogProbs: reference.chosenLogProbs, rejectedRefLogProbs: reference.rejectedLogProbs })
    : null;
  return { n: summed.n, summed, perToken, implicitReward };
}

/** Entropy in nats of softmax(logits[off .. off + V]), computed stably in float64: H = log Z - sum p_i z_i with z shifted by its max. */
export function softmaxEntropy(logits: ArrayLike<number>, off: number, V: number): number {
  let max = -Infinity;
  for (let j = 0; j < V; j++) max = Math.max(max, logits[off + j]);
  let z = 0;
  let pz = 0;
  for (let j = 0; j < V; j++) {
    const x = logits[off + j] - max;
    const e = Math.exp(x);
    z += e;
    pz += e * x;
  }
  return Math.max(0, Math.log(z) - pz / z);
}

export interface ConcentrationSettings {
  samplesPerPrompt: number;
  temperature: number;
  maxNewTokens: number;
  seed: number;
}

export interface Concentration {
  /** Entropy of the final answers among samples of one prompt, averaged over prompts (nats). */
  answer: AnswerEntropySummary;
  /** Entropy of the model's next-token distribution (temperature 1) along the sampled replies (nats per token). */
  token: TokenEntropySummary;
  /** Sampled replies, grouped per prompt. */
  samples: string[][];
}

/**
 * Samples `samplesPerPrompt` replies per prompt and measures how spread the
 * output distribution is: the entropy of the final answers across samples
 * and the model's per-token entropy along them (claim 3: lower after DPO).
 */
export function measureConcentration(model: LlamaModel, tokenizer: Tokenizer, prompts: readonly (string | ChatMessage[])[], settings: ConcentrationSettings): Concentration {
  const k = settings.samplesPerPrompt;
  if (!Number.isInteger(k) || k < 2) throw new Error(`samplesPerPrompt: got ${k}, expected an integer >= 2 (entropy across samples)`);
  const V = model.config.vocabSize;
  const rows: number[][] = [];
  prompts.forEach((p, i) => {
    const ids = promptIds(tokenizer, p, i);
    for (let j = 0; j < k; j++) rows.push(ids);
  });
  const perStep: number[][] = [];
  const completions = generate(model, rows, {
    maxNewTokens: settings.maxNewTokens,
    temperature: settings.temperature,
    seed: settings.seed,
    onStepLogits: (_step, logits) => {
      const h: number[] = [];
      for (let r = 0; r < rows.length; r++) h.push(softmaxEntropy(logits, r * V, V));
      perStep.push(h);
    },
  });
  const entropies = completions.map((c, r) => c.tokens.map((_, t) => perStep[t][r]));
  const samples: string[][] = prompts.map((_, i) => completions.slice(i * k, (i + 1) * k).map((c) => tokenizer.decode(c.tokens, { skipSpecialTokens: true })));
  return { answer: summarizeAnswerEntropy(samples), token: summarizeTokenEntropy(entropies), samples };
}

/** How a policy splits between the two reply styles, per prompt (exact, from the model's probabilities, no sampling). */
export interface StyleMeasure {
  /** P(the reply opens the preferred way | prompt), per prompt. */
  preferred: number[];
  /** P(the reply opens the other way | prompt), per prompt. */
  other: number[];
  /** Mean of `preferred`: the expected fraction of temperature-1 replies in the preferred style. */
  rate: number;
  rateStderr: number;
  /** Mean over prompts of preferred / (preferred + other): the preferred style's share among replies in either style. */
  share: number;
  shareStderr: number;
  /**
   * Mean over prompts of the binary entropy of that share, H(q) = -q ln q - (1-q) ln(1-q):
   * the entropy over the two styles (nats; ln 2 = 0.693 when both are equally likely).
   */
  entropy: number;
  entropyStderr: number;
}

const binaryEntropy = (p: number): number => (p <= 0 || p >= 1 ? 0 : -p * Math.log(p) - (1 - p) * Math.log(1 - p));

/** Mean and standard error of the mean. */
export function meanAndStderr(xs: readonly number[]): { mean: number; stderr: number } {
  const n = xs.length;
  if (n === 0) return { mean: Number.NaN, stderr: Number.NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, stderr: 0 };
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1);
  return { mean, stderr: Math.sqrt(variance / n) };
}

/**
 * The probability, per prompt, that the policy's reply opens the preferred
 * way (`preferredOpening`, e.g. "Sure! To ") and the other way
 * (`otherOpening`, "To "): the product of the model's next-token
 * probabilities of the opening's tokens after the chat prompt, i.e. exactly
 * the fraction of temperature-1 samples that would open that way. The style
 * entropy is the binary entropy of the preferred share between the two.
 */
export function measureStyle(model: LlamaModel, tokenizer: Tokenizer, prompts: readonly (string | ChatMessage[])[], preferredOpening: string, otherOpening: string, batchSize = 32): StyleMeasure {
  if (prompts.length === 0) throw new Error('prompts: got an empty list, expected at least one prompt');
  const probabilities = (opening: string, what: string): number[] => {
    const lead = tokenizer.encode(opening, { addSpecialTokens: false });
    if (lead.length === 0) throw new Error(`${what}: ${JSON.stringify(opening)} encodes to no tokens`);
    const sequences: number[][] = [];
    const promptLengths: number[] = [];
    prompts.forEach((p, i) => {
      const ids = promptIds(tokenizer, p, i);
      sequences.push([...ids, ...lead]);
      promptLengths.push(ids.length);
    });
    return sequenceTokenLogProbs(model, sequences, { promptLengths, batchSize }).map((row) => Math.exp(row.reduce((a, b) => a + b, 0)));
  };
  const preferred = probabilities(preferredOpening, 'preferredOpening');
  const other = probabilities(otherOpening, 'otherOpening');
  const shares = preferred.map((p, i) => (p + other[i] > 0 ? p / (p + other[i]) : 0.5));
  const rate = meanAndStderr(preferred);
  const share = meanAndStderr(shares);
  const entropy = meanAndStderr(shares.map(binaryEntropy));
  return { preferred, other, rate: rate.mean, rateStderr: rate.stderr, share: share.mean, shareStderr: share.stderr, entropy: entropy.mean, entropyStderr: entropy.stderr };
}
