import type { PipelineResult } from './run-pipeline';

/** One of the seeds' claims, with what was measured and whether it held (null: not measured in this run). */
export interface Claim {
  id: 1 | 2 | 3;
  statement: string;
  measured: string;
  held: boolean | null;
}

const CLAIM2 = 'RL (GRPO/PPO) from the SFT checkpoint reaches a given accuracy with fewer samples, and at lower KL, than RL from the base model.';
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const nats = (x: number | null): string => (x === null ? 'n/a' : x.toFixed(3));

/**
 * Marginal accuracy gain per added SFT example between consecutive sweep
 * sizes: g_i = (acc_i - acc_{i-1}) / (n_i - n_{i-1}). Returns are
 * diminishing when the last gain is below the first.
 */
export function marginalGains(points: readonly { sftExamples: number; accuracy: number }[]): number[] {
  const gains: number[] = [];
  for (let i = 1; i < points.length; i++) {
    const dn = points[i].sftExamples - points[i - 1].sftExamples;
    if (dn <= 0) throw new Error(`sweep: sizes must ascend, got ${points[i - 1].sftExamples} then ${points[i].sftExamples}`);
    gains.push((points[i].accuracy - points[i - 1].accuracy) / dn);
  }
  return gains;
}

/**
 * States the three claims of DESIGN.md ("Experiments") with the numbers of
 * this run and a verdict by an explicit rule (written in each `measured`), so
 * a reader can disagree with the rule but not with the numbers.
 */
export function assessClaims(r: Omit<PipelineResult, 'claims'>): Claim[] {
  const base = r.models.find((m) => m.model === 'base');
  const sfts = r.models.filter((m) => m.model.startsWith('sft-')).sort((a, b) => a.sftExamples - b.sftExamples);
  const dpo = r.models.find((m) => m.model === 'dpo');
  if (!base || sfts.length === 0 || !dpo) throw new Error('assessClaims: the result lacks the base, SFT or DPO evaluation');
  const first = sfts[0];
  const main = sfts[sfts.length - 1];

  // Claim 1
  const formatHeld = base.formatRate < 0.5 && first.formatRate > base.formatRate && first.accuracy >= base.accuracy;
  let sweepText = 'diminishing returns not measured (one SFT size; `posttrain experiment` runs the sweep)';
  let sweepHeld: boolean | null = null;
  if (sfts.length >= 3) {
    const gains = marginalGains(sfts);
    sweepHeld = gains[gains.length - 1] < gains[0];
    sweepText = `sweep ${sfts.map((m) => `${m.sftExamples}: ${pct(m.accuracy)}`).join(', ')}; accuracy gain per added example ${gains.map((g) => (100 * g).toFixed(3) + ' pp').join(' -> ')} (diminishing when the last is below the first: ${sweepHeld ? 'yes' : 'no'})`;
  }
  const claim1: Claim = {
    id: 1,
    statement: 'The base model is bad in the chat format; a small amount of SFT aligns the format and brings accuracy up, with diminishing returns as SFT data grows.',
    measured: `base: accuracy ${pct(base.accuracy)}, format ${pct(base.formatRate)}; SFT on ${first.sftExamples}: accuracy ${pct(first.accuracy)}, format ${pct(first.formatRate)} (holds when base format < 50% and SFT raises format without lowering accuracy: ${formatHeld ? 'yes' : 'no'}); ${sweepText}`,
    held: sweepHeld === null ? formatHeld : formatHeld && sweepHeld,
  };

  // Claim 2
  let claim2: Claim;
  if (r.rl === null) {
    claim2 = { id: 2, statement: CLAIM2, measured: r.rlNote, held: null };
  } else {
    const rl = r.rl;
    const fewer = rl.samplesFromSft < rl.samplesFromBase;
    const lowerKl = rl.meanKlFromSft <= rl.meanKlFromBase;
    const reach = (n: number): string => (Number.isFinite(n) ? `${n} samples` : 'never');
    const curve = (ps: readonly { score: number }[]): string => ps.map((p) => p.score.toFixed(2)).join(' ');
    const fromSft = r.models.find((m) => m.model === 'grpo-from-sft');
    const fromBase = r.models.find((m) => m.model === 'grpo-from-base');
    claim2 = {
      id: 2,
      statement: CLAIM2,
      measured:
        `GRPO step rewards from SFT: ${curve(rl.fromSft)}; from base: ${curve(rl.fromBase)}; ` +
        `mean reward ${Number.isFinite(rl.threshold) ? rl.threshold.toFixed(3) : '(none > 0)'} (half the best step) reached after ${reach(rl.samplesFromSft)} from SFT vs ${reach(rl.samplesFromBase)} from base; ` +
        `mean KL to the start model ${rl.meanKlFromSft.toFixed(4)} from SFT vs ${rl.meanKlFromBase.toFixed(4)} from base; ` +
        `held-out accuracy after GRPO ${fromSft ? pct(fromSft.accuracy) : 'n/a'} from SFT vs ${fromBase ? pct(fromBase.accuracy) : 'n/a'} from base ` +
        (Number.isFinite(rl.threshold)
          ? `(holds when SFT reaches the reward with fewer samples and at no higher KL: samples ${fewer ? 'yes' : 'no'}, KL ${lowerKl ? 'yes' : 'no'})`
          : '(neither run earned any reward: inconclusive)'),
      // Neither run earned any reward: no "given accuracy" to compare at, so no verdict.
      held: Number.isFinite(rl.threshold) ? fewer && lowerKl : null,
    };
  }

  // Claim 3
  const rankUp = dpo.preferenceAccuracyPerToken > main.preferenceAccuracyPerToken;
  const concentrated = dpo.answerEntropy !== null && main.answerEntropy !== null && dpo.tokenEntropy !== null && main.tokenEntropy !== null && (dpo.answerEntropy < main.answerEntropy || dpo.tokenEntropy < main.tokenEntropy);
  const claim3: Claim = {
    id: 3,
    statement: 'SFT alone does not rank two plausible answers; after DPO (or with the reward model) the preferred one is ranked higher, and the output distribution is more concentrated (lower entropy).',
    measured:
      `held-out pairs ranked right per token: SFT ${pct(main.preferenceAccuracyPerToken)} -> DPO ${pct(dpo.preferenceAccuracyPerToken)} (summed: ${pct(main.preferenceAccuracy)} -> ${pct(dpo.preferenceAccuracy)}); ` +
      `DPO implicit reward ${pct(r.dpoImplicitRewardAccuracy)}; reward model ${pct(r.rewardModelAccuracy)}; ` +
      `answer entropy ${nats(main.answerEntropy)} -> ${nats(dpo.answerEntropy)} nats, token entropy ${nats(main.tokenEntropy)} -> ${nats(dpo.tokenEntropy)} nats/token ` +
      `(holds when DPO ranks more pairs right per token than SFT and either entropy falls: ranking ${rankUp ? 'yes' : 'no'}, entropy ${concentrated ? 'yes' : 'no'})`,
    held: rankUp && concentrated,
  };
  return [claim1, claim2, claim3];
}
