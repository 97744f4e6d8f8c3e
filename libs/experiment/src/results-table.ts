import type { PipelineResult } from './run-pipeline';

const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');
const num = (x: number | null): string => (x === null || !Number.isFinite(x) ? 'n/a' : x.toFixed(3));

function markdownTable(header: string[], rows: string[][]): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [`| ${header.map(esc).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

/** Key numbers of a stage, for the stage table (eval loss, accuracies). */
function stageSummary(metrics: Record<string, number>): string {
  const keys = ['eval/loss', 'eval/mean_token_accuracy', 'eval/rewards/accuracies', 'eval/rewards/margins', 'accuracy', 'format_rate', 'preference_accuracy_per_token', 'implicit_reward_accuracy', 'answer_entropy', 'token_entropy', 'steps'];
  return keys.filter((k) => k in metrics).map((k) => `${k} ${Number.isInteger(metrics[k]) ? metrics[k] : metrics[k].toFixed(3)}`).join(', ');
}

/** The stage table: every stage that ran, its wall time and its key metrics. */
export function stageTable(r: PipelineResult): { header: string[]; rows: string[][] } {
  return { header: ['stage', 'what', 'seconds', 'key metrics'], rows: r.stages.map((s) => [s.stage, s.title, s.seconds.toFixed(1), stageSummary(s.metrics)]) };
}

/** The model table: one row per evaluated model. */
export function modelTable(r: PipelineResult): { header: string[]; rows: string[][] } {
  return {
    header: ['model', 'SFT examples', 'accuracy', 'format', 'mean reward', 'pref. acc (sum)', 'pref. acc (per token)', 'answer entropy', 'token entropy'],
    rows: r.models.map((m) => [m.model, String(m.sftExamples), pct(m.accuracy), pct(m.formatRate), num(m.meanReward), pct(m.preferenceAccuracy), pct(m.preferenceAccuracyPerToken), num(m.answerEntropy), num(m.tokenEntropy)]),
  };
}

/** results.md: the stage table, the model table and the claims, as Markdown. */
export function formatResultsMarkdown(r: PipelineResult): string {
  const st = stageTable(r);
  const mt = modelTable(r);
  const verdict = (h: boolean | null): string => (h === null ? 'not measured' : h ? 'held' : 'did not hold');
  return [
    `# posttrain ${r.plan.name}${r.plan.quick ? ' (quick)' : ''}: results`,
    '',
    `seed ${r.plan.seed}, backend ${r.backend}, total ${r.totalSeconds.toFixed(0)} s; stages run: ${r.stages.map((s) => s.stage).join(', ')}${r.rlStages.length ? '' : `. ${r.rlNote}.`}`,
    '',
    '## Models',
    '',
    markdownTable(mt.header, mt.rows),
    '',
    `Reward model: held-out pairwise accuracy ${pct(r.rewardModelAccuracy)}. DPO implicit reward: held-out accuracy ${pct(r.dpoImplicitRewardAccuracy)}.`,
    '',
    '## Stages',
    '',
    markdownTable(st.header, st.rows),
    '',
    '## Claims',
    '',
    ...r.claims.flatMap((c) => [`${c.id}. **${verdict(c.held)}**: ${c.statement}`, `   Measured: ${c.measured}`, '']),
  ].join('\n');
}

/** A plain-text table for the terminal (fixed-width columns). */
export function formatTextTable(t: { header: string[]; rows: string[][] }): string {
  const widths = t.header.map((h, i) => Math.max(h.length, ...t.rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(t.header), line(widths.map((w) => '-'.repeat(w))), ...t.rows.map(line)].join('\n');
}
