import type { Claim } from './assess-claims';
import type { Estimate, PipelineResult } from './pipeline-types';

const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');
const pctPm = (e: Estimate | null): string => (e === null || !Number.isFinite(e.value) ? 'n/a' : `${(100 * e.value).toFixed(1)}% ± ${(100 * e.stderr).toFixed(1)}`);
const nats = (e: Estimate): string => (Number.isFinite(e.value) ? e.value.toFixed(3) : 'n/a');

function markdownTable(header: string[], rows: string[][]): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [`| ${header.map(esc).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

/** Key numbers of a stage, for the stage table (eval loss, accuracies). */
function stageSummary(metrics: Record<string, number>): string {
  const keys = ['eval/loss', 'eval/mean_token_accuracy', 'competence', 'eval/rewards/accuracies', 'eval/rewards/margins', 'eval/reward_mean', 'eval/reward_std', 'objective/scores', 'objective/kl', 'rewards/correct', 'accuracy', 'format_rate', 'style_rate', 'style_ranking', 'implicit_reward_accuracy', 'accuracy_from_sft', 'accuracy_from_base', 'steps'];
  return keys.filter((k) => k in metrics).map((k) => `${k} ${Number.isInteger(metrics[k]) ? metrics[k] : metrics[k].toFixed(3)}`).join(', ');
}

/** The stage table: every stage that ran, its wall time and its key metrics. */
export function stageTable(r: PipelineResult): { header: string[]; rows: string[][] } {
  return { header: ['stage', 'what', 'seconds', 'key metrics'], rows: r.stages.map((s) => [s.stage, s.title, s.seconds.toFixed(1), stageSummary(s.metrics)]) };
}

/** The model table: one row per evaluated model (± one standard error over the held-out items). */
export function modelTable(r: PipelineResult): { header: string[]; rows: string[][] } {
  return {
    header: ['model', 'SFT examples', 'accuracy', 'format', 'preferred style', 'preferred share', 'style entropy', 'style pairs ranked', 'correctness pairs ranked', 'plain-text competence'],
    rows: r.models.map((m) => [m.model, String(m.sftExamples), pctPm(m.accuracy), pctPm(m.formatRate), pctPm(m.styleRate), pctPm(m.styleShare), nats(m.styleEntropy), pctPm(m.styleRanking), pctPm(m.correctnessRanking), pctPm(m.competence)]),
  };
}

/**
 * Several seeds' model tables in one: each cell the mean over the seeds ±
 * their sample standard deviation (the spread), for the models every seed
 * evaluated.
 */
export function seedSummaryTable(runs: readonly PipelineResult[]): { header: string[]; rows: string[][] } {
  const names = runs[0].models.map((m) => m.model).filter((n) => runs.every((r) => r.models.some((m) => m.model === n)));
  const cell = (values: number[], f: (x: number) => string): string => {
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const sd = values.length > 1 ? Math.sqrt(values.reduce((a, x) => a + (x - mean) ** 2, 0) / (values.length - 1)) : 0;
    return `${f(mean)} ± ${f(sd)}`;
  };
  const p = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const n = (x: number): string => x.toFixed(3);
  const metrics: [string, (m: PipelineResult['models'][number]) => number, (x: number) => string][] = [
    ['accuracy', (m) => m.accuracy.value, p],
    ['format', (m) => m.formatRate.value, p],
    ['preferred style', (m) => m.styleRate.value, p],
    ['preferred share', (m) => m.styleShare.value, p],
    ['style entropy', (m) => m.styleEntropy.value, n],
    ['style pairs ranked', (m) => m.styleRanking.value, p],
    ['correctness pairs ranked', (m) => m.correctnessRanking.value, p],
  ];
  return {
    header: ['model', ...metrics.map(([h]) => `${h} (mean ± sd over ${runs.length} seeds)`)],
    rows: names.map((name) => [name, ...metrics.map(([, get, f]) => cell(runs.map((r) => get(r.models.find((m) => m.model === name)!)), f))]),
  };
}

/** The claims as Markdown: verdict, statement, and each check with its estimate and rule. */
export function claimsMarkdown(claims: readonly Claim[]): string[] {
  return claims.flatMap((c) => [`### Claim ${c.id}: ${c.verdict}`, '', c.statement, '', markdownTable(['check', 'measured (± SE)', 'verdict', 'rule'], c.checks.map((k) => [k.what, k.measured, k.verdict, k.rule])), '']);
}

/** How many stages ran at once, when more than one (their seconds overlap, so they add up to more than the total). */
export function lanesNote(runs: readonly PipelineResult[]): string {
  const lanes = [...new Set(runs.map((r) => r.lanes ?? 1))];
  return lanes.length === 1 && lanes[0] === 1 ? '' : ` (up to ${lanes.join(' / ')} stages at once; the stages' seconds overlap)`;
}

/** results.md: the claims first, then the model table(s) and the stage table(s). */
export function formatResultsMarkdown(runs: readonly PipelineResult[], claims: readonly Claim[] = runs[0].claims): string {
  const first = runs[0];
  const many = runs.length > 1;
  return [
    `# posttrain ${first.plan.name}${first.plan.quick ? ' (quick)' : ''}: results`,
    '',
    `seed${many ? 's' : ''} ${runs.map((r) => r.plan.seed).join(', ')}, backend ${first.backend}, total ${runs.map((r) => r.totalSeconds.toFixed(0)).join(' + ')} s${lanesNote(runs)}; base model ${first.baseModel.dir}${first.baseModel.fromScratch ? ' (rebuilt from scratch)' : ''}. ${first.rlNote}.`,
    '',
    `## Claims${many ? ` (${runs.length} seeds pooled: mean, SE from items and seeds)` : ''}`,
    '',
    ...claimsMarkdown(claims),
    ...(many ? ['## Models over the seeds', '', markdownTable(seedSummaryTable(runs).header, seedSummaryTable(runs).rows), ''] : []),
    '## Models',
    '',
    ...runs.flatMap((r) => [...(many ? [`### seed ${r.plan.seed}`, ''] : []), markdownTable(modelTable(r).header, modelTable(r).rows), '']),
    `Reward model: held-out style pairs ranked right ${runs.map((r) => pct(r.rewardModelAccuracy.value)).join(', ')}. DPO implicit reward: ${runs.map((r) => pct(r.dpoImplicitRewardAccuracy)).join(', ')}.`,
    '',
    '## Stages',
    '',
    ...runs.flatMap((r) => [...(many ? [`### seed ${r.plan.seed}`, ''] : []), markdownTable(stageTable(r).header, stageTable(r).rows), '']),
  ].join('\n');
}

/** A plain-text table for the terminal (fixed-width columns). */
export function formatTextTable(t: { header: string[]; rows: string[][] }): string {
  const widths = t.header.map((h, i) => Math.max(h.length, ...t.rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(t.header), line(widths.map((w) => '-'.repeat(w))), ...t.rows.map(line)].join('\n');
}
