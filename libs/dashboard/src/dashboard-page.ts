/**
 * The dashboard page: runs with their state, live uPlot curves of the
 * selected run's metrics, its latest step, the newest generations of online
 * runs with their rewards, and the serving services. uPlot is inlined (no
 * CDN); the page reads /events (server-sent events). Untrusted text (run
 * names, prompts, completions) is set with textContent, never as HTML.
 */
import { createHash } from 'node:crypto';
import { escapeHtml, loadUplot } from '@posttrain/telemetry';

export interface RunSummary {
  id: string;
  name: string;
  stage: string;
  state: string;
  lastStep: number;
  totalSteps: number;
  createTime: string;
  endTime: string;
  errorMessage: string;
  metrics: Record<string, number>;
}

/** What differs between the Trainer's page and the demo's. */
export interface PageText {
  /** The page's heading and title; default "posttrain trainer". */
  title?: string;
  /** Shown when there are no services to check. */
  noServices?: string;
}

const DEFAULT_TEXT: Required<PageText> = {
  title: 'posttrain trainer',
  noServices: 'The trainer knows no service addresses (--sampler-addresses, --reference-address, --reward-address).',
};

/** Rows of the "Recent samples" table at most. */
export const SAMPLE_ROWS = 8;

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 1rem 1.5rem; color: #222; }
h1 { font-size: 1.3rem; margin: 0 0 .6rem; } h2 { font-size: 1.05rem; margin: 1rem 0 .4rem; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: .15rem .5rem; text-align: left; font-variant-numeric: tabular-nums; }
#runs tbody tr { cursor: pointer; } #runs tr.selected { background: #e8f0fe; }
.state-RUNNING { color: #0a6; font-weight: 600; } .state-FAILED { color: #c00; font-weight: 600; } .state-SUCCEEDED { color: #05a; }
#charts { display: flex; flex-wrap: wrap; gap: .8rem; } .chart { border: 1px solid #eee; padding: .3rem; }
#conn { font-size: .85rem; color: #666; } .muted { color: #888; }
.layout { display: flex; gap: 2rem; flex-wrap: wrap; align-items: flex-start; }
#samples td.text { white-space: pre-wrap; font-family: ui-monospace, monospace; max-width: 32rem; overflow-wrap: anywhere; }
`;

/** Metrics whose curves are drawn: reward, KL, losses and accuracies (train and eval). */
const CURVE_PATTERN = '^(eval/)?(objective/scores|objective/kl|train/loss|loss/policy|loss)$|accuracy';

const CLIENT = `
(function () {
  var CURVE = new RegExp(${JSON.stringify(CURVE_PATTERN)});
  var runs = {}, order = [], selected = null, pinned = false, charts = {}, dirty = false, sampleEvents = [];
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function fmt(v) { if (typeof v !== 'number' || !isFinite(v)) return String(v); if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(3); return String(Number(v.toPrecision(5))); }
  function run(id) { return runs[id] || (runs[id] = { summary: { id: id, name: id, stage: '', state: 'PENDING', lastStep: 0, totalSteps: 0 }, series: {}, latest: null }); }
  function upsert(s) { var r = run(s.id); r.summary = s; if (order.indexOf(s.id) < 0) order.unshift(s.id); if (!pinned) selected = pick(); }
  function pick() { for (var i = 0; i < order.length; i++) if (runs[order[i]].summary.state === 'RUNNING') return order[i]; return order[0] || null; }
  function renderRuns() {
    var body = document.querySelector('#runs tbody'); body.textContent = '';
    order.forEach(function (id) {
      var s = runs[id].summary, tr = el('tr'); tr.setAttribute('data-run-id', id); if (id === selected) tr.className = 'selected';
      tr.appendChild(el('td', s.id)); tr.appendChild(el('td', s.name)); tr.appendChild(el('td', s.stage));
      var st = el('td', s.state, 'state-' + s.state); st.setAttribute('data-state', s.state); tr.appendChild(st);
      tr.appendChild(el('td', s.lastStep + (s.totalSteps ? ' / ' + s.totalSteps : '')));
      tr.appendChild(el('td', s.errorMessage || ''));
      tr.onclick = function () { selected = id; pinned = true; renderAll(); };
      body.appendChild(tr);
    });
  }
  function renderLatest() {
    var t = document.getElementById('latest'); t.textContent = '';
    var r = selected && runs[selected]; if (!r || !r.latest) { t.appendChild(el('p', 'no steps yet', 'muted')); return; }
    t.appendChild(el('p', 'run ' + selected + ', step ' + r.latest.step));
    var tab = el('table'); Object.keys(r.latest.values).sort().forEach(function (k) { var tr = el('tr'); tr.appendChild(el('th', k)); tr.appendChild(el('td', fmt(r.latest.values[k]))); tab.appendChild(tr); });
    t.appendChild(tab);
  }
  function renderCharts(rebuild) {
    var root = document.getElementById('charts'), r = selected && runs[selected];
    if (rebuild) { Object.keys(charts).forEach(function (k) { charts[k].plot.destroy(); }); charts = {}; root.textContent = ''; }
    document.getElementById('charts-title').textContent = r ? 'Curves of ' + selected : 'Curves';
    if (!r) return;
    Object.keys(r.series).forEach(function (name) {
      var s = r.series[name], c = charts[name];
      if (!c) {
        var box = el('div', undefined, 'chart'); box.setAttribute('data-metric', name); root.appendChild(box);
        var plot = new uPlot({ title: name, width: 400, height: 220, scales: { x: { time: false } }, series: [{ label: 'step' }, { label: name, stroke: '#1f77b4', width: 2, points: { show: s.steps.length < 40 } }], axes: [{ label: 'step' }, {}] }, [s.steps, s.values], box);
        c = charts[name] = { plot: plot, box: box };
      } else c.plot.setData([s.steps, s.values]);
      c.box.setAttribute('data-points', String(s.steps.length));
    });
  }
  function renderAll() { renderRuns(); renderLatest(); renderCharts(true); }
  function schedule() { if (dirty) return; dirty = true; requestAnimationFrame(function () { dirty = false; renderRuns(); renderLatest(); renderCharts(false); }); }
  function onMetrics(m) {
    var r = run(m.runId), prefix = m.split === 'eval' ? 'eval/' : '';
    Object.keys(m.values).forEach(function (k) {
      var name = prefix && k.indexOf('eval/') !== 0 ? prefix + k : k, v = m.values[k];
      if (!CURVE.test(name) || typeof v !== 'number' || !isFinite(v)) return;
      var s = r.series[name] || (r.series[name] = { steps: [], values: [] });
      s.steps.push(m.step); s.values.push(v);
    });
    if (m.split !== 'eval') { r.latest = { step: m.step, values: m.values }; if (m.step > r.summary.lastStep) r.summary.lastStep = m.step; }
    if (m.runId === selected) schedule(); else renderRuns();
  }
  function onServices(list) {
    var body = document.querySelector('#services tbody'); body.textContent = '';
    list.forEach(function (s) {
      var tr = el('tr'); tr.appendChild(el('td', s.role)); tr.appendChild(el('td', s.address));
      var h = el('td', s.health); h.setAttribute('data-health', s.health); tr.appendChild(h);
      tr.appendChild(el('td', s.weightsVersion === undefined ? '' : s.weightsVersion)); tr.appendChild(el('td', s.error || '')); tr.appendChild(el('td', s.checkedAt));
      body.appendChild(tr);
    });
    document.getElementById('services').style.display = list.length ? '' : 'none';
    document.getElementById('no-services').style.display = list.length ? 'none' : '';
  }
  function onSamples(g) {
    sampleEvents.push(g);
    sampleEvents.sort(function (a, b) { return a.time < b.time ? 1 : a.time > b.time ? -1 : 0; });
    var rows = [];
    sampleEvents.forEach(function (ev) { ev.samples.forEach(function (s) { if (rows.length < ${SAMPLE_ROWS}) rows.push({ runId: ev.runId, step: ev.step, s: s }); }); });
    sampleEvents = sampleEvents.slice(0, ${SAMPLE_ROWS});
    var body = document.querySelector('#samples tbody'); body.textContent = '';
    rows.forEach(function (r) {
      var tr = el('tr'); tr.setAttribute('data-run-id', r.runId);
      tr.appendChild(el('td', r.runId)); tr.appendChild(el('td', r.step));
      tr.appendChild(el('td', r.s.prompt, 'text')); tr.appendChild(el('td', r.s.completion, 'text')); tr.appendChild(el('td', fmt(r.s.reward)));
      body.appendChild(tr);
    });
    document.getElementById('samples').style.display = rows.length ? '' : 'none';
    document.getElementById('no-samples').style.display = rows.length ? 'none' : '';
  }
  function parse(e) { return JSON.parse(e.data); }
  var conn = document.getElementById('conn'), es = new EventSource('events');
  es.onopen = function () { conn.textContent = 'live'; conn.setAttribute('data-live', 'true'); };
  es.onerror = function () { conn.textContent = 'disconnected; retrying'; conn.setAttribute('data-live', 'false'); };
  es.addEventListener('reset', function () { runs = {}; order = []; sampleEvents = []; });
  es.addEventListener('runs', function (e) { parse(e).slice().reverse().forEach(upsert); renderAll(); });
  es.addEventListener('run', function (e) { var s = parse(e), fresh = order.indexOf(s.id) < 0, before = selected; upsert(s); if (fresh || before !== selected) renderAll(); else schedule(); });
  es.addEventListener('metrics', function (e) { onMetrics(parse(e)); });
  es.addEventListener('samples', function (e) { onSamples(parse(e)); });
  es.addEventListener('services', function (e) { onServices(parse(e)); });
})();
`;

let cached: { head: string; tail: string; scriptHashes: string[] } | null = null;

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('base64');
}

function shell(): { head: string; tail: string; scriptHashes: string[] } {
  if (cached) return cached;
  const { js, css } = loadUplot();
  const head = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>@@TITLE@@</title>
<style>${css}</style><style>${STYLE}</style></head>
<body>
<h1>@@TITLE@@ <span id="conn" data-live="false">connecting</span></h1>
<div class="layout"><div>
<h2>Runs</h2>
<table id="runs"><thead><tr><th>run</th><th>name</th><th>stage</th><th>state</th><th>step</th><th>error</th></tr></thead><tbody>
`;
  const tail = `</tbody></table>
<h2>Latest step</h2><div id="latest"><p class="muted">no steps yet</p></div>
</div><div>
<h2>Services</h2>
<p id="no-services" class="muted">@@NO_SERVICES@@</p>
<table id="services" style="display:none"><thead><tr><th>role</th><th>address</th><th>health</th><th>weights version</th><th>error</th><th>checked</th></tr></thead><tbody></tbody></table>
</div></div>
<h2 id="charts-title">Curves</h2>
<div id="charts"></div>
<h2>Recent samples</h2>
<p id="no-samples" class="muted">No samples yet: PPO and GRPO steps record a few generations with their rewards.</p>
<table id="samples" style="display:none"><thead><tr><th>run</th><th>step</th><th>prompt</th><th>completion</th><th>reward</th></tr></thead><tbody></tbody></table>
<script>${js}</script>
<script>${CLIENT}</script>
</body></html>
`;
  cached = { head, tail, scriptHashes: [sha256(js), sha256(CLIENT)] };
  return cached;
}

/** The page, with the runs table filled in (escaped) for the first paint; the script keeps it live. */
export function renderDashboardPage(runs: RunSummary[], text: PageText = {}): { html: string; scriptHashes: string[] } {
  const { title, noServices } = { ...DEFAULT_TEXT, ...text };
  const shellParts = shell();
  const head = shellParts.head.replaceAll('@@TITLE@@', escapeHtml(title));
  const tail = shellParts.tail.replace('@@NO_SERVICES@@', escapeHtml(noServices));
  const { scriptHashes } = shellParts;
  const rows = runs
    .map((r) => `<tr data-run-id="${escapeHtml(r.id)}"><td>${escapeHtml(r.id)}</td><td>${escapeHtml(r.name)}</td><td>${escapeHtml(r.stage)}</td><td class="state-${escapeHtml(r.state)}" data-state="${escapeHtml(r.state)}">${escapeHtml(r.state)}</td><td>${r.lastStep}${r.totalSteps ? ` / ${r.totalSteps}` : ''}</td><td>${escapeHtml(r.errorMessage)}</td></tr>`)
    .join('\n');
  return { html: head + rows + tail, scriptHashes };
}
