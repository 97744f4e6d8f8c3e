/**
 * report.html of a run: one uPlot chart per metric (x = step) and a summary
 * table, in a single self-contained page. uPlot's script and stylesheet are
 * inlined, so the page opens offline (file://, air-gapped machines).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { MetricsRecord } from './metrics-sink';
import { readMetricsJsonl } from './metrics-sink';

export interface RunReportInput {
  title: string;
  records: MetricsRecord[];
  /** Extra rows for the summary table (run id, stage, final accuracy, ...). */
  summary?: Record<string, string | number>;
  /** The resolved config, shown at the bottom of the page. */
  config?: unknown;
}

/** Per metric: last, min and max over finite values, and the number of points. */
export interface MetricSummary {
  name: string;
  points: number;
  lastStep: number;
  last: number;
  min: number;
  max: number;
}

const nodeRequire = createRequire(__filename);
let uplotAssets: { js: string; css: string } | null = null;

/** uPlot's script and stylesheet (from the `uplot` package), read once, for pages that inline them. */
export function loadUplot(): { js: string; css: string } {
  if (uplotAssets) return uplotAssets;
  const js = nodeRequire.resolve('uplot/dist/uPlot.iife.min.js');
  const css = nodeRequire.resolve('uplot/dist/uPlot.min.css');
  uplotAssets = { js: readFileSync(js, 'utf8'), css: readFileSync(css, 'utf8') };
  return uplotAssets;
}

/** Text safe inside HTML element content and double-quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** JSON that is safe inside a <script> element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(4);
  return Number(v.toPrecision(6)).toString();
}

/** Metric series (step-sorted, finite values only) keyed by name, in first-seen order. */
export function metricSeries(records: MetricsRecord[]): Map<string, { steps: number[]; values: number[] }> {
  const series = new Map<string, { steps: number[]; values: number[] }>();
  const sorted = [...records].sort((a, b) => a.step - b.step);
  for (const r of sorted) {
    for (const [k, v] of Object.entries(r)) {
      if (k === 'step' || k === 'time' || !Number.isFinite(v)) continue;
      let s = series.get(k);
      if (!s) series.set(k, (s = { steps: [], values: [] }));
      s.steps.push(r.step);
      s.values.push(v);
    }
  }
  return series;
}

export function summariseMetrics(records: MetricsRecord[]): MetricSummary[] {
  return [...metricSeries(records)].map(([name, s]) => ({
    name,
    points: s.values.length,
    lastStep: s.steps[s.steps.length - 1],
    last: s.values[s.values.length - 1],
    min: Math.min(...s.values),
    max: Math.max(...s.values),
  }));
}

/** The report page as a string. */
export function renderRunReport(input: RunReportInput): string {
  const { js, css } = loadUplot();
  const series = metricSeries(input.records);
  const charts = [...series].map(([name, s]) => ({ name, data: [s.steps, s.values] }));
  const rows = Object.entries(input.summary ?? {})
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td colspan="5">${escapeHtml(typeof v === 'number' ? formatNumber(v) : v)}</td></tr>`)
    .join('\n');
  const metricRows = summariseMetrics(input.records)
    .map((m) => `<tr><td>${escapeHtml(m.name)}</td><td>${formatNumber(m.last)}</td><td>${m.lastStep}</td><td>${formatNumber(m.min)}</td><td>${formatNumber(m.max)}</td><td>${m.points}</td></tr>`)
    .join('\n');
  const configBlock = input.config === undefined ? '' : `<h2>Config</h2><pre>${escapeHtml(JSON.stringify(input.config, null, 2))}</pre>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(input.title)}</title>
<style>${css}</style>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: left; font-variant-numeric: tabular-nums; }
#charts { display: flex; flex-wrap: wrap; gap: 1rem; }
.chart { border: 1px solid #eee; padding: 0.3rem; }
pre { background: #f6f6f6; padding: 0.8rem; overflow: auto; }
</style></head>
<body>
<h1>${escapeHtml(input.title)}</h1>
<h2>Summary</h2>
<table>
${rows}
<tr><th>metric</th><th>last</th><th>at step</th><th>min</th><th>max</th><th>points</th></tr>
${metricRows}
</table>
<h2>Curves</h2>
<div id="charts"></div>
${configBlock}
<script>${js}</script>
<script>
(function () {
  var charts = ${scriptJson(charts)};
  var root = document.getElementById('charts');
  charts.forEach(function (c) {
    var el = document.createElement('div');
    el.className = 'chart';
    el.setAttribute('data-metric', c.name);
    root.appendChild(el);
    new uPlot({
      title: c.name,
      width: 420,
      height: 240,
      scales: { x: { time: false } },
      series: [{ label: 'step' }, { label: c.name, stroke: '#1f77b4', width: 2, points: { show: c.data[0].length < 40 } }],
      axes: [{ label: 'step' }, {}]
    }, c.data, el);
  });
  document.body.setAttribute('data-charts', String(charts.length));
})();
</script>
</body></html>
`;
}

/**
 * Renders `<runDir>/metrics.jsonl` into `<runDir>/report.html` (written to a
 * temp file and renamed, so a reader never sees half a page). Returns the path.
 */
export function writeRunReport(runDir: string, options: Omit<RunReportInput, 'records'> & { records?: MetricsRecord[] }): string {
  const records = options.records ?? readMetricsJsonl(join(runDir, 'metrics.jsonl'));
  const html = renderRunReport({ ...options, records });
  const out = join(runDir, 'report.html');
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, html);
  renameSync(tmp, out);
  return out;
}
