import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MetricsRecord } from '@posttrain/telemetry';
import { readMetricsJsonl, renderRunReport } from '@posttrain/telemetry';
import type { PipelineResult } from './run-pipeline';
import { modelTable, stageTable } from './results-table';

/** Curves worth a chart in the whole-pipeline report (the per-run reports keep all of them). */
const CURVES = ['train/loss', 'eval/loss', 'eval/mean_token_accuracy', 'rewards/accuracies', 'rewards/margins', 'eval/rewards/accuracies', 'eval/rewards/margins', 'objective/scores', 'objective/kl'];

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function htmlTable(t: { header: string[]; rows: string[][] }, id: string): string {
  return `<table id="${id}">\n<tr>${t.header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>\n${t.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n')}\n</table>`;
}

/**
 * The metric records of the report: each training stage's curves renamed
 * `<stage>/<metric>` (so one page holds every stage), and the SFT sweep as
 * `sft-sweep/accuracy` and `sft-sweep/format_rate` with the number of SFT
 * examples on the x axis.
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
  const sweep = r.models.filter((m) => m.sftExamples > 0 && m.model.startsWith('sft-'));
  if (sweep.length > 1) for (const m of sweep) out.push({ step: m.sftExamples, time: 0, 'sft-sweep/accuracy': m.accuracy, 'sft-sweep/format_rate': m.formatRate });
  return out;
}

/**
 * report.html of a whole pipeline run: libs/telemetry's run report (curves of
 * every stage, uPlot inlined, offline) with the model table, the stage table
 * and the claims put in after the title.
 */
export function renderPipelineReport(r: PipelineResult): string {
  const title = `posttrain ${r.plan.name}${r.plan.quick ? ' (quick)' : ''}`;
  const html = renderRunReport({
    title,
    records: pipelineRecords(r),
    summary: { seed: r.plan.seed, backend: r.backend, 'total seconds': Number(r.totalSeconds.toFixed(1)), 'stages run': r.stages.map((s) => s.stage).join(', '), 'RL stages': r.rlStages.length ? r.rlStages.join(', ') : r.rlNote },
    config: r.plan,
  });
  const verdict = (h: boolean | null): string => (h === null ? 'not measured' : h ? 'held' : 'did not hold');
  const sections = [
    '<h2>Models</h2>',
    htmlTable(modelTable(r), 'models'),
    `<p>Reward model: held-out pairwise accuracy ${(100 * r.rewardModelAccuracy).toFixed(1)}%. DPO implicit reward: held-out accuracy ${(100 * r.dpoImplicitRewardAccuracy).toFixed(1)}%.</p>`,
    '<h2>Claims</h2>',
    `<ol id="claims">${r.claims.map((c) => `<li data-held="${String(c.held)}"><b>${verdict(c.held)}</b>: ${escapeHtml(c.statement)}<br><small>${escapeHtml(c.measured)}</small></li>`).join('\n')}</ol>`,
    '<h2>Stages</h2>',
    htmlTable(stageTable(r), 'stages'),
  ].join('\n');
  const marker = `<h1>${escapeHtml(title)}</h1>`;
  const at = html.indexOf(marker);
  if (at < 0) throw new Error('renderPipelineReport: the run report has no title heading to insert after');
  return html.slice(0, at + marker.length) + '\n' + sections + html.slice(at + marker.length);
}

/** Writes report.html, results.json and results.md into the run's output directory (each atomically); returns their paths. */
export function writePipelineArtifacts(r: PipelineResult, markdown: string): { report: string; json: string; markdown: string } {
  const write = (name: string, text: string): string => {
    const path = join(r.outDir, name);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, text);
    renameSync(tmp, path);
    return path;
  };
  return {
    report: write('report.html', renderPipelineReport(r)),
    json: write('results.json', JSON.stringify(r, null, 2) + '\n'),
    markdown: write('results.md', markdown),
  };
}
