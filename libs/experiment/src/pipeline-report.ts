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
import { poolEstimates } from './assess-claims';
import type { Estimate, ModelEvaluation, PipelineResult } from './pipeline-types';
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

/** One plot: series over a shared x axis (null where a series has no point), drawn by uPlot in the page. */
export interface ClaimChart {
  kind: 'lines';
  claim: number;
  title: string;
  xLabel: string;
  x: number[];
  /** Tick labels for x = 0, 1, 2, ... (categories evenly spaced); absent: x is numeric. */
  xTicks?: string[];
  series: { label: string; values: (number | null)[] }[];
}

/**
 * One bar chart: for each group (a measure), one bar per model, its height
 * the estimate pooled over the seeds (poolEstimates) with whiskers at ± 2 SE,
 * the margin the claims' rules use; with several seeds each seed's value is a
 * dot on its bar. Drawn as inline SVG when the page is written (barChartSvg).
 */
export interface BarChart {
  kind: 'bars';
  claim: number;
  title: string;
  groups: string[];
  bars: { label: string; values: Estimate[]; seeds: number[][] }[];
}

export type ClaimPlot = ClaimChart | BarChart;

/** Merges (x, y) series with different x values onto one sorted x axis. */
function mergeSeries(claim: number, title: string, xLabel: string, parts: { label: string; points: [number, number][] }[]): ClaimChart {
  const xs = [...new Set(parts.flatMap((p) => p.points.map(([x]) => x)))].sort((a, b) => a - b);
  return {
    kind: 'lines',
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
export function claimCharts(runs: readonly PipelineResult[]): ClaimPlot[] {
  const charts: ClaimPlot[] = [];
  const model = (r: PipelineResult, name: string): ModelEvaluation | undefined => r.models.find((m) => m.model === name);
  // Claim 1: accuracy and format against SFT examples, the base model first. The sizes are evenly
  // spaced (10, 30, 100, 300, 1000 grow about threefold each), so the sweep's small sizes do not crowd
  // against the base model as they would on a linear axis.
  const sweep = mergeSeries(
    1,
    'answer accuracy and format rate against SFT examples',
    'SFT examples (evenly spaced sizes)',
    runs.flatMap((r) => {
      const points = r.models.filter((m) => m.model === 'base' || m.model.startsWith('sft-'));
      return [
        { label: seedLabel(runs, r, 'accuracy'), points: points.map((m): [number, number] => [m.sftExamples, m.accuracy.value]) },
        { label: seedLabel(runs, r, 'format'), points: points.map((m): [number, number] => [m.sftExamples, m.formatRate.value]) },
      ];
    }),
  );
  charts.push({ ...sweep, x: sweep.x.map((_, i) => i), xTicks: sweep.x.map((n) => (n === 0 ? 'base' : String(n))) });
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
  // Claims 3 and 4: each measure before (the SFT model the tuned one started from) and after preference tuning.
  const beforeAfter = (claim: number, after: string, title: string): BarChart | null => {
    const pairs = runs.flatMap((r) => {
      const tuned = model(r, after);
      // The SFT model the tuned one started from (the main line's, not necessarily the sweep's largest).
      const sft = r.models.find((m) => m.model.startsWith('sft-') && m.sftExamples === tuned?.sftExamples);
      return sft && tuned ? [{ sft, tuned }] : [];
    });
    if (pairs.length === 0) return null;
    const measures: [string, (m: ModelEvaluation) => Estimate][] = [
      ['style pairs ranked right', (m) => m.styleRanking],
      ['preferred-style rate', (m) => m.styleRate],
      ['style entropy (nats)', (m) => m.styleEntropy],
      ['answer accuracy', (m) => m.accuracy],
    ];
    const bar = (label: string, which: (p: (typeof pairs)[number]) => ModelEvaluation) => {
      const values = measures.map(([, f]) => pairs.map((p) => f(which(p))));
      return { label, values: values.map((es) => poolEstimates(es)).map(({ value, stderr }) => ({ value, stderr })), seeds: values.map((es) => es.map((e) => e.value)) };
    };
    return { kind: 'bars', claim, title, groups: measures.map(([g]) => g), bars: [bar(`SFT (${pairs[0].sft.model})`, (p) => p.sft), bar(after.toUpperCase(), (p) => p.tuned)] };
  };
  const dpo = beforeAfter(3, 'dpo', 'DPO: ranking, style and accuracy before and after');
  if (dpo) charts.push(dpo);
  if (runs.some((r) => model(r, 'ppo'))) {
    charts.push(mergeSeries(4, 'PPO: reward-model score and KL to SFT (nats) against completions seen', 'completions', [...rlParts('ppo', 'reward-model score', (p) => (p as { score?: number }).score ?? null), ...rlParts('ppo', 'KL to SFT', (p) => p.kl)]));
    const ppo = beforeAfter(4, 'ppo', 'PPO: ranking, style and accuracy before and after');
    if (ppo) charts.push(ppo);
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

const fmtBar = (group: string, v: number): string => (group.includes('(nats)') ? v.toFixed(3) : `${(100 * v).toFixed(1)}%`);

/**
 * A bar chart as inline SVG (no script, so it reads the same printed or
 * with scripts off). Each bar carries data-value and data-stderr; whiskers
 * span ± 2 SE, clipped to the axis.
 */
export function barChartSvg(chart: BarChart): string {
  const W = 560;
  const H = 330;
  const left = 44;
  const right = W - 10;
  const top = 40;
  const bottom = 250;
  // Rates and two-style entropies (at most ln 2) fit under 1; whiskers past the axis are clipped.
  const highest = Math.max(1, ...chart.bars.flatMap((b) => [...b.values.map((e) => e.value), ...b.seeds.flat()]));
  const yMax = Math.ceil(highest / 0.2 - 1e-9) * 0.2;
  const y = (v: number): number => bottom - (Math.min(Math.max(v, 0), yMax) / yMax) * (bottom - top);
  const groupW = (right - left) / chart.groups.length;
  const barW = (groupW * 0.7) / chart.bars.length;
  const r = (v: number): string => v.toFixed(1);
  const out: string[] = [];
  out.push(`<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(chart.title)}" font-family="sans-serif" font-size="11">`);
  out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeHtml(chart.title)}</text>`);
  for (let t = 0; t <= yMax + 1e-9; t += 0.2) {
    out.push(`<line x1="${left}" x2="${right}" y1="${r(y(t))}" y2="${r(y(t))}" stroke="#ddd"/><text x="${left - 6}" y="${r(y(t) + 4)}" text-anchor="end">${t.toFixed(1)}</text>`);
  }
  chart.groups.forEach((g, gi) => {
    const x0 = left + gi * groupW + groupW * 0.15;
    chart.bars.forEach((b, bi) => {
      const e = b.values[gi];
      const x = x0 + bi * barW;
      const cx = x + barW / 2;
      const colour = COLOURS[bi % COLOURS.length];
      out.push(`<rect class="bar" data-group="${escapeHtml(g)}" data-bar="${escapeHtml(b.label)}" data-value="${e.value}" data-stderr="${e.stderr}" x="${r(x + 1)}" y="${r(y(e.value))}" width="${r(barW - 2)}" height="${r(bottom - y(e.value))}" fill="${colour}" fill-opacity="0.75"/>`);
      if (e.stderr > 0) {
        const lo = y(e.value - 2 * e.stderr);
        const hi = y(e.value + 2 * e.stderr);
        out.push(`<path class="whisker" d="M${r(cx)} ${r(lo)}V${r(hi)}M${r(cx - 4)} ${r(lo)}h8M${r(cx - 4)} ${r(hi)}h8" stroke="#222" fill="none"/>`);
      }
      for (const v of b.seeds[gi].length > 1 ? b.seeds[gi] : []) out.push(`<circle class="seed" cx="${r(cx)}" cy="${r(y(v))}" r="2.5" fill="#222" stroke="#fff"/>`);
      out.push(`<text x="${r(cx)}" y="${r(Math.min(y(e.value), y(e.value + 2 * e.stderr)) - 4)}" text-anchor="middle" font-size="10">${fmtBar(g, e.value)}</text>`);
    });
    out.push(`<text x="${r(left + (gi + 0.5) * groupW)}" y="${bottom + 16}" text-anchor="middle">${escapeHtml(g)}</text>`);
  });
  out.push(`<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#444"/>`);
  let lx = left;
  chart.bars.forEach((b, bi) => {
    out.push(`<rect x="${lx}" y="${H - 40}" width="12" height="12" fill="${COLOURS[bi % COLOURS.length]}" fill-opacity="0.75"/><text x="${lx + 16}" y="${H - 30}">${escapeHtml(b.label)}</text>`);
    lx += 24 + 7 * b.label.length;
  });
  out.push('</svg>');
  return out.join('');
}

function barCaption(chart: BarChart): string {
  const seeds = chart.bars[0]?.seeds[0]?.length ?? 1;
  return seeds > 1
    ? `Bars: the mean over ${seeds} seeds; whiskers: ± 2 SE (over the held-out items and the seeds, as the pooled claims); dots: each seed.`
    : 'Bars: the estimate; whiskers: ± 2 SE over the held-out items, the margin the claims\' rules use.';
}

function claimSection(c: Claim, plots: readonly ClaimPlot[], lineIndex: (p: ClaimChart) => number): string {
  const rows = c.checks.map((k) => `<tr data-verdict="${escapeHtml(k.verdict)}"><td>${escapeHtml(k.what)}</td><td>${escapeHtml(k.measured)}</td><td><b>${escapeHtml(k.verdict)}</b></td><td><small>${escapeHtml(k.rule)}</small></td></tr>`).join('\n');
  const drawn = plots.map((p) => (p.kind === 'lines' ? `<div class="claim-chart" id="claim-chart-${lineIndex(p)}"></div>` : `<figure class="claim-chart claim-bars">${barChartSvg(p)}<figcaption><small>${escapeHtml(barCaption(p))}</small></figcaption></figure>`)).join('');
  return `<section class="claim" id="claim-${c.id}" data-verdict="${escapeHtml(c.verdict)}">
<h2>Claim ${c.id}: ${escapeHtml(c.verdict)}</h2>
<p>${escapeHtml(c.statement)}</p>
<table><tr><th>check</th><th>measured (± SE)</th><th>verdict</th><th>rule</th></tr>
${rows}
</table>
<div class="claim-charts">${drawn}</div>
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
  // The line charts in page order, each drawn by uPlot into its div; the bar charts are already SVG.
  const lineCharts = claims.flatMap((c) => charts.filter((ch): ch is ClaimChart => ch.claim === c.id && ch.kind === 'lines'));
  const sections = claims.map((c) => claimSection(c, charts.filter((ch) => ch.claim === c.id), (p) => lineCharts.indexOf(p)));
  const script = `<script>
(function () {
  var charts = ${scriptJson(lineCharts)};
  var colours = ${scriptJson(COLOURS)};
  charts.forEach(function (c, i) {
    var el = document.getElementById('claim-chart-' + i);
    if (!el) return;
    el.setAttribute('data-points', String(c.x.length));
    var xAxis = { label: c.xLabel };
    var xSeries = { label: c.xLabel };
    if (c.xTicks) {
      xSeries.value = function (u, v) { return v == null ? '--' : c.xTicks[v]; };
      xAxis.splits = function () { return c.x; };
      xAxis.values = function (u, splits) { return splits.map(function (v) { return c.xTicks[v] === undefined ? '' : c.xTicks[v]; }); };
    }
    new uPlot({
      title: c.title,
      width: 520,
      height: 280,
      scales: { x: { time: false } },
      series: [xSeries].concat(c.series.map(function (s, j) { return { label: s.label, stroke: colours[j % colours.length], width: 2, spanGaps: true, points: { show: true } }; })),
      axes: [xAxis, {}]
    }, [c.x].concat(c.series.map(function (s) { return s.values; })), el);
  });
  document.body.setAttribute('data-claim-charts', String(charts.length + document.querySelectorAll('svg.bars').length));
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
