/**
 * The seeds' claims, judged from measured numbers and their uncertainty.
 *
 * Every check compares an estimate with a threshold named in its rule. A
 * difference counts only when it exceeds twice its standard error: the
 * standard error over evaluation items in one run, and over seeds as well
 * when several runs are pooled (`poolClaimInputs`). So a check is
 *
 * - `held` when the estimate clears the threshold by more than 2 SE,
 * - `did not hold` when it misses it by more than 2 SE,
 * - `not shown` in between (the run cannot tell), and
 * - `not measured` when the stage behind it did not run.
 *
 * A claim holds when all its checks hold; it did not hold when one did not;
 * otherwise it is not shown (or not measured).
 */
import type { Estimate, PipelineResult } from './pipeline-types';
import { meanAndStderr } from './model-evaluation';
import { firstReaching } from './run-rl-stage';

export type Verdict = 'held' | 'did not hold' | 'not shown' | 'not measured';

export interface Check {
  /** What is compared, e.g. "SFT answer accuracy". */
  what: string;
  /** The estimate with its uncertainty, as text: "72.0% ± 3.2%". */
  measured: string;
  /** The threshold and the noise rule. */
  rule: string;
  verdict: Verdict;
}

export interface Claim {
  id: 1 | 2 | 3 | 4;
  statement: string;
  checks: Check[];
  verdict: Verdict;
  /** One line: every check's measurement and verdict. */
  measured: string;
}

/** The numbers the claims are judged on; one run's, or several seeds' pooled. */
export interface ClaimInputs {
  /** Runs pooled (1 for a single run). */
  seeds: number;
  base: { format: Estimate; competence: Estimate };
  sft: { examples: number; accuracy: Estimate; format: Estimate; styleRanking: Estimate; styleEntropy: Estimate };
  /** SFT accuracy at each sweep size, ascending (one point without a sweep). */
  sweep: { examples: number; accuracy: Estimate }[];
  rewardModel: Estimate;
  ppo: { styleRate: Estimate; accuracyDrop: Estimate; kl: Estimate } | null;
  dpo: { styleRanking: Estimate; styleEntropy: Estimate; accuracyDrop: Estimate };
  grpo: {
    /** Held-out accuracy of GRPO from SFT minus SFT's, paired over prompts. */
    gain: Estimate;
    /** What the gain must reach: +10 points, or half of SFT's error rate if that is less. */
    required: number;
    /**
     * The gain minus what it must reach, paired over prompts. Half of SFT's
     * error rate is itself SFT's estimate, so its noise belongs in this SE:
     * per prompt, (g - s) - (1 - s) / 2 (g, s: 1 when GRPO, SFT answer it
     * right); against the fixed +10 points, (g - s) - 0.1. See gainMargin.
     */
    margin: Estimate;
    /** Training accuracy to reach (the SFT start's first-step accuracy + 5 points), and completions needed from each start (Infinity: never). */
    target: number;
    samplesFromSft: number;
    samplesFromBase: number;
    /** KL to the start model at the step each run first reached the target (null: never), and at each run's end. */
    klAtTargetFromSft: number | null;
    klAtTargetFromBase: number | null;
    klEndFromSft: number;
    klEndFromBase: number;
    /** The prompts each GRPO run trained on (the plan's promptFilter; absent in results from before it): its step accuracy is over those. */
    prompts?: 'all' | 'failed';
  } | null;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const pp = (x: number): string => `${(100 * x).toFixed(1)} pts`;
const nats = (x: number): string => `${x.toFixed(3)} nats`;
const pm = (e: Estimate, f: (x: number) => string): string => `${f(e.value)} ± ${f(e.stderr)}`;

/** estimate >= threshold, beyond 2 SE. */
export function atLeast(what: string, e: Estimate, threshold: number, f: (x: number) => string = pct): Check {
  const rule = `at least ${f(threshold)}; held when the estimate - 2 SE clears it, did not hold when the estimate + 2 SE misses it`;
  const verdict: Verdict = !Number.isFinite(e.value) ? 'not measured' : e.value - 2 * e.stderr >= threshold ? 'held' : e.value + 2 * e.stderr < threshold ? 'did not hold' : 'not shown';
  return { what, measured: pm(e, f), rule, verdict };
}

/** estimate <= threshold, beyond 2 SE. */
export function atMost(what: string, e: Estimate, threshold: number, f: (x: number) => string = pct): Check {
  const rule = `at most ${f(threshold)}; held when the estimate + 2 SE stays under it, did not hold when the estimate - 2 SE exceeds it`;
  const verdict: Verdict = !Number.isFinite(e.value) ? 'not measured' : e.value + 2 * e.stderr <= threshold ? 'held' : e.value - 2 * e.stderr > threshold ? 'did not hold' : 'not shown';
  return { what, measured: pm(e, f), rule, verdict };
}

/** estimate > 0 beyond 2 SE (a difference that must be shown). */
function positive(what: string, e: Estimate, f: (x: number) => string): Check {
  const c = atLeast(what, e, 0, f);
  return { ...c, rule: 'above 0; held when the estimate - 2 SE is above 0, did not hold when the estimate + 2 SE is below 0', verdict: c.verdict === 'held' && e.value - 2 * e.stderr === 0 ? 'not shown' : c.verdict };
}

const diff = (a: Estimate, b: Estimate): Estimate => ({ value: a.value - b.value, stderr: Math.hypot(a.stderr, b.stderr) });

/**
 * Claim 2's KL: the KL to its start model at which each run first reached
 * the target accuracy. Lower from SFT holds; a base run that never reached
 * the target got there at no KL at all, so SFT reaching it is the lower KL
 * (said so in the measurement); neither reaching it is not shown.
 */
function klAtTarget(g: NonNullable<ClaimInputs['grpo']>): Check {
  const at = (kl: number | null, end: number): string => (kl === null ? `never reached (KL ${nats(end)} at its end)` : nats(kl));
  const measured = `from SFT ${at(g.klAtTargetFromSft, g.klEndFromSft)}; from base ${at(g.klAtTargetFromBase, g.klEndFromBase)}`;
  const verdict: Verdict =
    g.klAtTargetFromSft === null ? (g.klAtTargetFromBase === null ? 'not shown' : 'did not hold') : g.klAtTargetFromBase === null || g.klAtTargetFromSft < g.klAtTargetFromBase ? 'held' : 'did not hold';
  return { what: 'KL to the start model when the step accuracy first reaches the target', measured, rule: 'lower from SFT; a start that never reaches the target cannot reach it at a lower KL', verdict };
}

/**
 * Claim 2's gain: GRPO from SFT must gain +10 points, or half of SFT's error
 * rate where that is less. Judged on the margin over that requirement, whose
 * SE counts SFT's noise in the requirement too (ClaimInputs.grpo.margin).
 */
function gainCheck(g: NonNullable<ClaimInputs['grpo']>): Check {
  const half = g.required < 0.1;
  const c = positive(`GRPO from SFT accuracy gain over SFT, minus what it must reach (${half ? "half of SFT's error rate" : '+10 pts'}, the lesser)`, g.margin, pp);
  return {
    ...c,
    measured: `gain ${pm(g.gain, pp)}, required ${pp(g.required)}; margin ${pm(g.margin, pp)}`,
    rule: `margin above 0; held when the margin - 2 SE is above 0, did not hold when the margin + 2 SE is below 0${half ? "; half of SFT's error rate is SFT's own estimate, so its noise is in the margin's SE" : ''}`,
  };
}

function claimVerdict(checks: readonly Check[]): Verdict {
  if (checks.some((c) => c.verdict === 'not measured')) return 'not measured';
  if (checks.some((c) => c.verdict === 'did not hold')) return 'did not hold';
  if (checks.some((c) => c.verdict === 'not shown')) return 'not shown';
  return 'held';
}

function claim(id: Claim['id'], statement: string, checks: Check[]): Claim {
  return { id, statement, checks, verdict: claimVerdict(checks), measured: checks.map((c) => `${c.what}: ${c.measured} (${c.verdict})`).join('; ') };
}

function unmeasured(id: Claim['id'], statement: string, why: string): Claim {
  return { id, statement, checks: [{ what: statement, measured: why, rule: 'needs the RL stages', verdict: 'not measured' }], verdict: 'not measured', measured: why };
}

/**
 * Marginal accuracy gain per added SFT example between consecutive sweep
 * sizes: g_i = (acc_i - acc_{i-1}) / (n_i - n_{i-1}), with its standard
 * error from the two accuracies' (independent runs).
 */
export function marginalGains(points: readonly { examples: number; accuracy: Estimate }[]): Estimate[] {
  const gains: Estimate[] = [];
  for (let i = 1; i < points.length; i++) {
    const dn = points[i].examples - points[i - 1].examples;
    if (dn <= 0) throw new Error(`sweep: sizes must ascend, got ${points[i - 1].examples} then ${points[i].examples}`);
    const d = diff(points[i].accuracy, points[i - 1].accuracy);
    gains.push({ value: d.value / dn, stderr: d.stderr / dn });
  }
  return gains;
}

export const CLAIMS = {
  1: 'The base model does the arithmetic in plain text but not in the chat format; a small amount of SFT aligns the format and the answers follow, with diminishing returns as SFT data grows.',
  2: 'RL (GRPO, verifiable reward) from the SFT checkpoint improves accuracy, reaching a given accuracy with fewer samples and at lower KL than RL from the base model.',
  3: 'SFT cannot rank two plausible responses (it imitates both styles); DPO ranks the preferred one higher and concentrates the output distribution on it without losing accuracy.',
  4: 'RLHF: a reward model learns the preference, and PPO with a KL penalty to SFT moves the policy to the preferred style without losing accuracy.',
} as const;

/**
 * Claim 1 as a run without the SFT sweep can judge it: its checks cover the
 * base model and one SFT size, so "held" there must not speak for the
 * diminishing returns, which only the sweep measures.
 */
export const CLAIM_1_WITHOUT_SWEEP =
  'The base model does the arithmetic in plain text but not in the chat format; a small amount of SFT aligns the format and the answers follow. (Diminishing returns as SFT data grows: not measured, since this run trains one SFT size; `posttrain experiment` runs the sweep.)';

/** Judges the four claims from their inputs (one run or pooled seeds). */
export function judgeClaims(x: ClaimInputs): Claim[] {
  const sweepChecks: Check[] = [];
  if (x.sweep.length >= 3) {
    const gains = marginalGains(x.sweep);
    const shrink = diff(gains[0], gains[gains.length - 1]);
    sweepChecks.push(
      positive(
        `gain per SFT example, first interval (${x.sweep[0].examples}->${x.sweep[1].examples}) minus last (${x.sweep[x.sweep.length - 2].examples}->${x.sweep[x.sweep.length - 1].examples})`,
        shrink,
        (v) => `${(100 * v).toFixed(3)} pts/example`,
      ),
    );
  }
  const claim1 = claim(1, sweepChecks.length > 0 ? CLAIMS[1] : CLAIM_1_WITHOUT_SWEEP, [
    atMost('base format rate in the chat format', x.base.format, 0.1),
    atLeast('base plain-text competence (prose prompts)', x.base.competence, 0.8),
    atLeast(`SFT (${x.sft.examples} examples) format rate`, x.sft.format, 0.95),
    atLeast(`SFT (${x.sft.examples} examples) answer accuracy`, x.sft.accuracy, 0.5),
    ...sweepChecks,
  ]);

  const claim2 = x.grpo
    ? claim(2, CLAIMS[2], [
        gainCheck(x.grpo),
        {
          what: `completions until the step accuracy${x.grpo.prompts === 'failed' ? ' (on the prompts each start answers wrong)' : ''} reaches ${pct(x.grpo.target)} (SFT start + 5 pts)`,
          measured: `${Number.isFinite(x.grpo.samplesFromSft) ? x.grpo.samplesFromSft : 'never'} from SFT vs ${Number.isFinite(x.grpo.samplesFromBase) ? x.grpo.samplesFromBase : 'never'} from base`,
          rule: 'fewer from SFT; not shown when neither start reaches it',
          verdict: !Number.isFinite(x.grpo.samplesFromSft) ? (Number.isFinite(x.grpo.samplesFromBase) ? 'did not hold' : 'not shown') : x.grpo.samplesFromSft < x.grpo.samplesFromBase ? 'held' : 'did not hold',
        },
        klAtTarget(x.grpo),
      ])
    : unmeasured(2, CLAIMS[2], 'GRPO did not run');

  const claim3 = claim(3, CLAIMS[3], [
    atMost('SFT: held-out style pairs ranked right', x.sft.styleRanking, 0.65),
    atLeast('DPO: held-out style pairs ranked right', x.dpo.styleRanking, 0.9),
    positive('style entropy: half of SFT\'s minus DPO\'s', { value: x.sft.styleEntropy.value / 2 - x.dpo.styleEntropy.value, stderr: Math.hypot(x.sft.styleEntropy.stderr / 2, x.dpo.styleEntropy.stderr) }, nats),
    atMost('DPO: answer accuracy drop from SFT', x.dpo.accuracyDrop, 0.05, pp),
  ]);

  const claim4 = x.ppo
    ? claim(4, CLAIMS[4], [
        atLeast('reward model: held-out style pairs ranked right', x.rewardModel, 0.9),
        atLeast('PPO: preferred-style rate', x.ppo.styleRate, 0.9),
        atMost('PPO: answer accuracy drop from SFT', x.ppo.accuracyDrop, 0.05, pp),
        { what: 'PPO: KL to SFT at the last step', measured: pm(x.ppo.kl, nats), rule: 'reported (the penalty keeps it small)', verdict: Number.isFinite(x.ppo.kl.value) ? 'held' : 'not measured' },
      ])
    : unmeasured(4, CLAIMS[4], 'PPO did not run');
  return [claim1, claim2, claim3, claim4];
}

/** Paired difference a - b over the same prompts (1 = right): mean and standard error of the per-prompt differences. */
export function pairedDifference(a: readonly boolean[], b: readonly boolean[]): Estimate {
  if (a.length !== b.length) throw new Error(`paired difference: ${a.length} vs ${b.length} prompts`);
  const m = meanAndStderr(a.map((x, i) => (x ? 1 : 0) - (b[i] ? 1 : 0)));
  return { value: m.mean, stderr: m.stderr };
}

/**
 * GRPO's gain over SFT minus what claim 2 asks of it, paired over the same
 * prompts (1 = right): the requirement is +10 points, or half of SFT's error
 * rate where that is less. In the second case GRPO must reach
 * err_grpo <= err_sft / 2, so the per-prompt margin is
 * (g - s) - (1 - s) / 2 = g - s / 2 - 1 / 2, and its SE carries the noise of
 * SFT's error rate (halved) as well as GRPO's; subtracting a fixed threshold
 * from the paired gain would count SFT's noise twice over.
 */
export function gainMargin(grpo: readonly boolean[], sft: readonly boolean[]): { gain: Estimate; required: number; margin: Estimate } {
  if (grpo.length !== sft.length) throw new Error(`gain margin: ${grpo.length} vs ${sft.length} prompts`);
  const g = grpo.map((x): number => (x ? 1 : 0));
  const s = sft.map((x): number => (x ? 1 : 0));
  const sftError = 1 - s.reduce((a, b) => a + b, 0) / s.length;
  const required = Math.min(0.1, 0.5 * sftError);
  const half = required < 0.1;
  const m = meanAndStderr(g.map((gi, i) => (half ? gi - s[i] / 2 - 1 / 2 : gi - s[i] - 0.1)));
  return { gain: pairedDifference(grpo, sft), required, margin: { value: m.mean, stderr: m.stderr } };
}

/** The claims' inputs from one pipeline run. */
export function claimInputs(r: Omit<PipelineResult, 'claims'>): ClaimInputs {
  const find = (name: string): PipelineResult['models'][number] | undefined => r.models.find((m) => m.model === name);
  const base = find('base');
  const sfts = r.models.filter((m) => m.model.startsWith('sft-')).sort((a, b) => a.sftExamples - b.sftExamples);
  const dpo = find('dpo');
  if (!base || sfts.length === 0 || !dpo) throw new Error('claimInputs: the result lacks the base, SFT or DPO evaluation');
  // The main line's SFT: the one DPO (and PPO, GRPO) started from, whatever the sweep's largest size.
  const sft = sfts.find((m) => m.sftExamples === dpo.sftExamples);
  if (!sft) throw new Error(`claimInputs: DPO started from SFT on ${dpo.sftExamples} examples, but the result has no sft-${dpo.sftExamples} evaluation`);
  const ppo = find('ppo');
  const ppoCurve = r.rl.find((c) => c.stage === 'ppo');
  const fromSft = find('grpo-from-sft');
  const grpoSft = r.rl.find((c) => c.stage === 'grpo-sft');
  const grpoBase = r.rl.find((c) => c.stage === 'grpo-base');
  let grpo: ClaimInputs['grpo'] = null;
  if (fromSft && grpoSft && grpoBase && grpoSft.points.length > 0 && grpoBase.points.length > 0) {
    const target = (grpoSft.points[0].accuracy ?? 0) + 0.05;
    const fromSftReach = firstReaching(grpoSft.points, target);
    const fromBaseReach = firstReaching(grpoBase.points, target);
    grpo = {
      ...gainMargin(fromSft.correct, sft.correct),
      target,
      samplesFromSft: fromSftReach?.samples ?? Number.POSITIVE_INFINITY,
      samplesFromBase: fromBaseReach?.samples ?? Number.POSITIVE_INFINITY,
      klAtTargetFromSft: fromSftReach?.kl ?? null,
      klAtTargetFromBase: fromBaseReach?.kl ?? null,
      klEndFromSft: grpoSft.points[grpoSft.points.length - 1].kl,
      klEndFromBase: grpoBase.points[grpoBase.points.length - 1].kl,
      prompts: r.plan.grpo?.promptFilter ?? 'all',
    };
  }
  return {
    seeds: 1,
    base: { format: base.formatRate, competence: base.competence ?? r.baseModel.competence },
    sft: { examples: sft.sftExamples, accuracy: sft.accuracy, format: sft.formatRate, styleRanking: sft.styleRanking, styleEntropy: sft.styleEntropy },
    sweep: sfts.map((m) => ({ examples: m.sftExamples, accuracy: m.accuracy })),
    rewardModel: r.rewardModelAccuracy,
    ppo: ppo && ppoCurve ? { styleRate: ppo.styleRate, accuracyDrop: pairedDifference(sft.correct, ppo.correct), kl: { value: ppoCurve.points[ppoCurve.points.length - 1].kl, stderr: 0 } } : null,
    dpo: { styleRanking: dpo.styleRanking, styleEntropy: dpo.styleEntropy, accuracyDrop: pairedDifference(sft.correct, dpo.correct) },
    grpo,
  };
}

/** The claims of one pipeline run. */
export function assessClaims(r: Omit<PipelineResult, 'claims'>): Claim[] {
  return judgeClaims(claimInputs(r));
}

/**
 * Pools several seeds' estimates: the mean over seeds, with a standard error
 * that counts both the items' noise and the spread across seeds,
 * SE^2 = mean(SE_i^2) / k + s^2 / k (s: the seeds' sample standard deviation).
 */
export function poolEstimates(es: readonly Estimate[]): Estimate & { spread: number } {
  const k = es.length;
  if (k === 0) throw new Error('poolEstimates: no estimates');
  const m = meanAndStderr(es.map((e) => e.value));
  const itemVar = es.reduce((a, e) => a + e.stderr ** 2, 0) / k;
  const spread = m.stderr * Math.sqrt(k); // the seeds' sample standard deviation
  return { value: m.mean, stderr: Math.sqrt(itemVar / k + m.stderr ** 2), spread };
}

/** The claims' inputs of several seeds pooled (see poolEstimates); samples-to-reach take the seeds' median. */
export function poolClaimInputs(runs: readonly ClaimInputs[]): ClaimInputs {
  if (runs.length === 0) throw new Error('poolClaimInputs: no runs');
  const pool = (f: (x: ClaimInputs) => Estimate): Estimate => {
    const p = poolEstimates(runs.map(f));
    return { value: p.value, stderr: p.stderr };
  };
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const medianReached = (xs: (number | null)[]): number | null => {
    const reached = xs.filter((v): v is number => v !== null);
    return reached.length * 2 >= xs.length ? median(reached) : null;
  };
  const first = runs[0];
  const all = <T>(f: (x: ClaimInputs) => T | null): boolean => runs.every((x) => f(x) !== null);
  return {
    seeds: runs.length,
    base: { format: pool((x) => x.base.format), competence: pool((x) => x.base.competence) },
    sft: { examples: first.sft.examples, accuracy: pool((x) => x.sft.accuracy), format: pool((x) => x.sft.format), styleRanking: pool((x) => x.sft.styleRanking), styleEntropy: pool((x) => x.sft.styleEntropy) },
    sweep: first.sweep.map((p, i) => ({ examples: p.examples, accuracy: pool((x) => x.sweep[i].accuracy) })),
    rewardModel: pool((x) => x.rewardModel),
    ppo: all((x) => x.ppo) ? { styleRate: pool((x) => x.ppo!.styleRate), accuracyDrop: pool((x) => x.ppo!.accuracyDrop), kl: pool((x) => x.ppo!.kl) } : null,
    dpo: { styleRanking: pool((x) => x.dpo.styleRanking), styleEntropy: pool((x) => x.dpo.styleEntropy), accuracyDrop: pool((x) => x.dpo.accuracyDrop) },
    grpo: all((x) => x.grpo)
      ? {
          gain: pool((x) => x.grpo!.gain),
          margin: pool((x) => x.grpo!.margin),
          required: Math.min(0.1, 0.5 * (1 - pool((x) => x.sft.accuracy).value)),
          target: runs.reduce((a, x) => a + x.grpo!.target, 0) / runs.length,
          samplesFromSft: median(runs.map((x) => x.grpo!.samplesFromSft)),
          samplesFromBase: median(runs.map((x) => x.grpo!.samplesFromBase)),
          // The seeds' median KL at the target, when at least half the seeds reached it.
          klAtTargetFromSft: medianReached(runs.map((x) => x.grpo!.klAtTargetFromSft)),
          klAtTargetFromBase: medianReached(runs.map((x) => x.grpo!.klAtTargetFromBase)),
          klEndFromSft: median(runs.map((x) => x.grpo!.klEndFromSft)),
          klEndFromBase: median(runs.map((x) => x.grpo!.klEndFromBase)),
          prompts: first.grpo!.prompts,
        }
      : null,
  };
}
