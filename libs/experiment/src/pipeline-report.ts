/**
 * report.html of a demo or experiment: it reads like a result. One section
 * per claim comes first, each with its verdict, its checks (estimate ± SE,
 * rule) and its plot; the model table and the stage details follow, then
 * libs/telemetry's curves of every training stage. With several seeds
 * (`posttrain experiment`), the claims are the pooled ones and each plot
 * draws every seed.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MetricsRecord } from '@posttrain/telemetry';
import { readMetricsJsonl, renderRunReport } from '@posttrain/telemetry';
import type { Claim } from './assess-claims';
import type { ModelEvaluation, PipelineResult } from './pipeline-types';
import { lanesNote, modelTable, seedSummaryTable, stageTable } from './results-table';

/** Curves worth a chart in the whole-pipeline report (the per-run reports keep all of them). */
const CURVES = ['train/loss', 'eval/loss', 'eval/mean_token_accuracy', 'rewards/accuracies', 'rewards/margins', 'eval/rewards/accuracies', 'eval/rewards/margins', 'objective/scores', 'objective/kl', 'rewards/correct'];

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function htmlTable(t: { header: string[]; rows: string[][] }, id: string): string {
  return `<table id="${id}">\n<tr>${t.header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>\n${t.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n')}\n</table>`;
}

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** One plot: series over a shared x axis (null where a series has no point). */
export interface ClaimChart {
  claim: number;
  title: string;
  xLabel: string;
  x: number[];
  series: { label: string; values: (number | null)[] }[];
}

/** Merges (x, y) series with different x values onto one sorted x axis. */
function mergeSeries(claim: number, title: string, xLabel: string, parts: { label: string; points: [number, number][] }[]): ClaimChart {
  const xs = [...new Set(parts.flatMap((p) => p.points.map(([x]) => x)))].sort((a, b) => a - b);
  return {
    claim,
    title,
    xLabel,
    x: xs,
    series: parts.map((p) => {
      const at = new Map(p.points);
      return { label: p.label, values: xs.map((x) => at.get(x) ?? null) };
    }),
  };
}

const seedLabel = (runs: readonly PipelineResult[], r: PipelineResult, what: string): string => (runs.length > 1 ? `${what}, seed ${r.plan.seed}` : what);

/** The plots of the claims, from every seed's run. */
export function claimCharts(runs: readonly PipelineResult[]): ClaimChart[] {
  const charts: ClaimChart[] = [];
  const model = (r: PipelineResult, name: string): ModelEvaluation | undefined => r.models.find((m) => m.model === name);
  // Claim 1: accuracy and format against SFT examples (0: the base model).
  charts.push(
    mergeSeries(
      1,
      'answer accuracy and format rate against SFT examples (0 = base)',
      'SFT examples',
      runs.flatMap((r) => {
        const points = r.models.filter((m) => m.model === 'base' || m.model.startsWith('sft-'));
        return [
          { label: seedLabel(runs, r, 'accuracy'), points: points.map((m): [number, number] => [m.sftExamples, m.accuracy.value]) },
          { label: seedLabel(runs, r, 'format'), points: points.map((m): [number, number] => [m.sftExamples, m.formatRate.value]) },
        ];
      }),
    ),
  );
  // Claim 2: GRPO's step accuracy and KL against completions seen, from SFT and from base.
  const rlParts = (stage: string, what: string, pick: (p: { accuracy: number | null; kl: number }) => number | null) =>
    runs.flatMap((r) => {
      const c = r.rl.find((x) => x.stage === stage);
      return c ? [{ label: seedLabel(runs, r, what), points: c.points.flatMap((p): [number, number][] => (pick(p) === null ? [] : [[p.samples, pick(p)!]])) }] : [];
    });
  if (runs.some((r) => r.rl.some((c) => c.stage.startsWith('grpo')))) {
    charts.push(mergeSeries(2, 'GRPO: accuracy of the step rollouts against completions seen', 'completions', [...rlParts('grpo-sft', 'from SFT', (p) => p.accuracy), ...rlParts('grpo-base', 'from base', (p) => p.accuracy)]));
    charts.push(mergeSeries(2, 'GRPO: KL to the start model (nats) against completions seen', 'completions', [...rlParts('grpo-sft', 'from SFT', (p) => p.kl), ...rlParts('grpo-base', 'from base', (p) => p.kl)]));
  }
  // Claims 3 and 4: before (SFT, x = 0) and after (x = 1) preference tuning.
  const beforeAfter = (claim: number, after: string, title: string): ClaimChart =>
    mergeSeries(
      claim,
      title,
      `0 = SFT, 1 = ${after.toUpperCase()}`,
      runs.flatMap((r) => {
        const tuned = model(r, after);
        // The SFT model the tuned one started from (the main line's, not necessarily the sweep's largest).
        const sft = r.models.find((m) => m.model.startsWith('sft-') && m.sftExamples === tuned?.sftExamples);
        if (!sft || !tuned) return [];
        const pair = (f: (m: ModelEvaluation) => number): [number, number][] => [
          [0, f(sft)],
          [1, f(tuned)],
        ];
        return [
          { label: seedLabel(runs, r, 'style pairs ranked right'), points: pair((m) => m.styleRanking.value) },
          { label: seedLabel(runs, r, 'preferred-style rate'), points: pair((m) => m.styleRate.value) },
          { label: seedLabel(runs, r, 'style entropy (nats)'), points: pair((m) => m.styleEntropy.value) },
          { label: seedLabel(runs, r, 'answer accuracy'), points: pair((m) => m.accuracy.value) },
        ];
      }),
    );
  charts.push(beforeAfter(3, 'dpo', 'DPO: ranking, style and accuracy before and after'));
  if (runs.some((r) => model(r, 'ppo'))) {
    charts.push(mergeSeries(4, 'PPO: reward-model score and KL to SFT (nats) against completions seen', 'completions', [...rlParts('ppo', 'reward-model score', (p) => (p as { score?: number }).score ?? null), ...rlParts('ppo', 'KL to SFT', (p) => p.kl)]));
    charts.push(beforeAfter(4, 'ppo', 'PPO: ranking, style and accuracy before and after'));
  }
  return charts;
}

/**
 * The metric records of the stage-details part: each training stage's curves
 * renamed `<stage>/<metric>` (so one page holds every stage) of one run.
 */
export function pipelineRecords(r: PipelineResult): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  for (const s of r.stages) {
    if (s.runDir === null) continue;
    for (const rec of readMetricsJsonl(join(s.runDir, 'metrics.jsonl'))) {
      const renamed: MetricsRecord = { step: rec.step, time: rec.time };
      for (const k of CURVES) if (typeof rec[k] === 'number') renamed[`${s.stage}/${k}`] = rec[k];
      if (Object.keys(renamed).length > 2) out.push(renamed);
    }
  }
  return out;
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

function claimSection(c: Claim, charts: readonly ClaimChart[], startIndex: number): string {
  const rows = c.checks.map((k) => `<tr data-verdict="${escapeHtml(k.verdict)}"><td>${escapeHtml(k.what)}</td><td>${escapeHtml(k.measured)}</td><td><b>${escapeHtml(k.verdict)}</b></td><td><small>${escapeHtml(k.rule)}</small></td></tr>`).join('\n');
  const plots = charts.map((_, i) => `<div class="claim-chart" id="claim-chart-${startIndex + i}"></div>`).join('');
  return `<section class="claim" id="claim-${c.id}" data-verdict="${escapeHtml(c.verdict)}">
<h2>Claim ${c.id}: ${escapeHtml(c.verdict)}</h2>
<p>${escapeHtml(c.statement)}</p>
<table><tr><th>check</th><th>measured (± SE)</th><th>verdict</th><th>rule</th></tr>
${rows}
</table>
<div class="claim-charts">${plots}</div>
</section>`;
}

/**
 * report.html of a pipeline run (or of several seeds' runs with pooled
 * claims): the claims with their plots first, then the models, the stages
 * and every stage's curves (of the first run).
 */
export function renderPipelineReport(runs: readonly PipelineResult[], claims: readonly Claim[] = runs[0].claims): string {
  if (runs.length === 0) throw new Error('renderPipelineReport: no runs');
  const first = runs[0];
  const title = `posttrain ${first.plan.name}${first.plan.quick ? ' (quick)' : ''}${runs.length > 1 ? ` (${runs.length} seeds)` : ''}`;
  const html = renderRunReport({
    title,
    records: pipelineRecords(first),
    summary: {
      seeds: runs.map((r) => r.plan.seed).join(', '),
      backend: first.backend,
      'base model': `${first.baseModel.dir}${first.baseModel.fromScratch ? ' (rebuilt from scratch)' : ''}`,
      'total seconds': runs.map((r) => r.totalSeconds.toFixed(0)).join(', ') + lanesNote(runs),
      'stages run': first.stages.map((s) => s.stage).join(', '),
      RL: first.rlNote,
    },
    config: first.plan,
  });
  const charts = claimCharts(runs);
  let index = 0;
  const sections = claims.map((c) => {
    const mine = charts.filter((ch) => ch.claim === c.id);
    const s = claimSection(c, mine, index);
    index += mine.length;
    return s;
  });
  const orderedCharts = claims.flatMap((c) => charts.filter((ch) => ch.claim === c.id));
  const script = `<script>
(function () {
  var charts = ${scriptJson(orderedCharts)};
  var colours = ${scriptJson(COLOURS)};
  charts.forEach(function (c, i) {
    var el = document.getElementById('claim-chart-' + i);
    if (!el) return;
    el.setAttribute('data-points', String(c.x.length));
    new uPlot({
      title: c.title,
      width: 520,
      height: 280,
      scales: { x: { time: false } },
      series: [{ label: c.xLabel }].concat(c.series.map(function (s, j) { return { label: s.label, stroke: colours[j % colours.length], width: 2, spanGaps: true, points: { show: true } }; })),
      axes: [{ label: c.xLabel }, {}]
    }, [c.x].concat(c.series.map(function (s) { return s.values; })), el);
  });
  document.body.setAttribute('data-claim-charts', String(charts.length));
})();
</script>`;
  const parts = [
    ...sections,
    ...(runs.length > 1 ? ['<h2>Models over the seeds</h2>', htmlTable(seedSummaryTable(runs), 'models-seeds')] : []),
    '<h2>Models</h2>',
    ...runs.map((r) => `${runs.length > 1 ? `<h3>seed ${r.plan.seed}</h3>` : ''}${htmlTable(modelTable(r), `models-${r.plan.seed}`)}`),
    `<p>Reward model: held-out style pairs ranked right ${runs.map((r) => `${(100 * r.rewardModelAccuracy.value).toFixed(1)}%`).join(', ')}. DPO implicit reward: ${runs.map((r) => `${(100 * r.dpoImplicitRewardAccuracy).toFixed(1)}%`).join(', ')}.</p>`,
    '<h2>Stages</h2>',
    ...runs.map((r) => `${runs.length > 1 ? `<h3>seed ${r.plan.seed}</h3>` : ''}${htmlTable(stageTable(r), `stages-${r.plan.seed}`)}`),
  ].join('\n');
  const marker = `<h1>${escapeHtml(title)}</h1>`;
  const at = html.indexOf(marker);
  if (at < 0) throw new Error('renderPipelineReport: the run report has no title heading to insert after');
  // The claims' script needs uPlot, which the run report inlines at its end: put it after the last </script>.
  const body = html.slice(0, at + marker.length) + '\n' + parts + html.slice(at + marker.length);
  const end = body.lastIndexOf('</body>');
  return body.slice(0, end) + script + '\n' + body.slice(end);
}

/** Writes `text` to `path` through a temporary file and a rename. */
function writeAtomic(path: string, text: string): string {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
  return path;
}

/** Writes report.html, results.json and results.md into `outDir` (each atomically); returns their paths. */
export function writePipelineArtifacts(outDir: string, runs: readonly PipelineResult[], claims: readonly Claim[], markdown: string, extra: Record<string, unknown> = {}): { report: string; json: string; markdown: string } {
  return {
    report: writeAtomic(join(outDir, 'report.html'), renderPipelineReport(runs, claims)),
    json: writeAtomic(join(outDir, 'results.json'), JSON.stringify(runs.length === 1 ? { ...runs[0], claims } : { claims, ...extra, runs }, null, 2) + '\n'),
    markdown: writeAtomic(join(outDir, 'results.md'), markdown),
  };
}

/** Reads a results.json back (for the README and tests). */
export function readResultsJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}
