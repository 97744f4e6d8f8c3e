/** Per-pair sequence scores, with optional reference log-probs and lengths. All arrays have one entry per pair. */
export interface PreferenceScores {
  /** Sum of the policy's log-probs over the chosen reply's tokens. */
  readonly chosenLogProbs: readonly number[];
  readonly rejectedLogProbs: readonly number[];
  /**
   * The reference model's log-probs: when given, pairs are ranked by the DPO
   * implicit reward log pi(y|x) - log pi_ref(y|x) (beta only scales it, so it
   * changes no ranking and is left out), as TRL's `rewards/accuracies`.
   */
  readonly chosenRefLogProbs?: readonly number[];
  readonly rejectedRefLogProbs?: readonly number[];
  /**
   * Reply lengths in tokens: when given, scores are divided by them (mean
   * log-prob per token). A dropped carry makes a rejected reply shorter, and
   * a summed log-prob favours short replies, so per-token scores separate
   * "prefers the right answer" from "prefers fewer tokens".
   */
  readonly chosenLengths?: readonly number[];
  readonly rejectedLengths?: readonly number[];
}

export interface PreferenceRanking {
  readonly n: number;
  /** Fraction of pairs with score(chosen) > score(rejected); a tie counts as wrong (TRL's convention). */
  readonly accuracy: number;
  /** Number of exact ties. */
  readonly ties: number;
  /** Mean of score(chosen) - score(rejected), in nats (per token when lengths are given). */
  readonly meanMargin: number;
  readonly margins: readonly number[];
}

function checkColumn(values: readonly number[] | undefined, field: string, n: number, positive: boolean): void {
  if (values === undefined) return;
  if (!Array.isArray(values) || values.length !== n) throw new Error(`${field}: got ${Array.isArray(values) ? `${values.length} values` : JSON.stringify(values)}, expected ${n} (one per pair)`);
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0)) {
      throw new Error(`${field}[${i}]: got ${JSON.stringify(v)}, expected a finite number${positive ? ' > 0' : ''}`);
    }
  });
}

/**
 * How often a model prefers the right reply of a preference pair: the
 * experiments' third claim (SFT alone does not rank two plausible replies;
 * after DPO, or by the reward model, the chosen one ranks higher). The
 * reference and the lengths must be given for both sides or neither.
 */
export function rankPreferences(scores: PreferenceScores): PreferenceRanking {
  const n = Array.isArray(scores.chosenLogProbs) ? scores.chosenLogProbs.length : 0;
  if (n === 0) throw new Error(`chosenLogProbs: got ${JSON.stringify(scores.chosenLogProbs)}, expected a non-empty list of log-probs`);
  checkColumn(scores.chosenLogProbs, 'chosenLogProbs', n, false);
  checkColumn(scores.rejectedLogProbs, 'rejectedLogProbs', n, false);
  if (scores.rejectedLogProbs === undefined) throw new Error('rejectedLogProbs: missing, expected one log-prob per pair');
  for (const [a, b] of [['chosenRefLogProbs', 'rejectedRefLogProbs'], ['chosenLengths', 'rejectedLengths']] as const) {
    if ((scores[a] === undefined) !== (scores[b] === undefined)) throw new Error(`${scores[a] === undefined ? a : b}: missing, but ${scores[a] === undefined ? b : a} is given; give both or neither`);
  }
  checkColumn(scores.chosenRefLogProbs, 'chosenRefLogProbs', n, false);
  checkColumn(scores.rejectedRefLogProbs, 'rejectedRefLogProbs', n, false);
  checkColumn(scores.chosenLengths, 'chosenLengths', n, true);
  checkColumn(scores.rejectedLengths, 'rejectedLengths', n, true);

  const score = (logProbs: readonly number[], ref: readonly number[] | undefined, lengths: readonly number[] | undefined, i: number): number =>
    (logProbs[i] - (ref?.[i] ?? 0)) / (lengths?.[i] ?? 1);
  const margins: number[] = [];
  let right = 0;
  let ties = 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const m =
      score(scores.chosenLogProbs, scores.chosenRefLogProbs, scores.chosenLengths, i) -
      score(scores.rejectedLogProbs, scores.rejectedRefLogProbs, scores.rejectedLengths, i);
    margins.push(m);
    sum += m;
    if (m > 0) right++;
    else if (m === 0) ties++;
  }
  return { n, accuracy: right / n, ties, meanMargin: sum / n, margins };
}
