import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { summariseMetrics, writeRunReport } from './run-report';
import type { MetricsRecord } from './metrics-sink';

const CHROMIUM = '/usr/bin/chromium';

function records(): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  for (let s = 1; s <= 20; s++) {
    const r: MetricsRecord = { step: s, time: 1000 + s, 'train/loss': 3 / s, 'train/learning_rate': 1e-3 };
    if (s % 5 === 0) r['eval/loss'] = 3.5 / s;
    out.push(r);
  }
  return out;
}

describe('summariseMetrics', () => {
  test('last / min / max / points per metric, skipping non-finite values', () => {
    const recs = records();
    recs.push({ step: 21, time: 0, 'train/loss': Number.NaN });
    const s = summariseMetrics(recs);
    const loss = s.find((m) => m.name === 'train/loss')!;
    // 3/s for s = 1..20: last 3/20 = 0.15 at step 20, min 0.15, max 3; the NaN at step 21 is left out.
    assert.deepEqual(loss, { name: 'train/loss', points: 20, lastStep: 20, last: 0.15, min: 0.15, max: 3 });
    const ev = s.find((m) => m.name === 'eval/loss')!;
    assert.equal(ev.points, 4);
    assert.equal(ev.last, 3.5 / 20);
  });
});

describe('report.html', () => {
  test('is self-contained and renders one non-blank canvas per metric in headless Chromium', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} is not installed` }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'report-'));
    const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
    try {
      writeFileSync(join(dir, 'metrics.jsonl'), records().map((r) => JSON.stringify(r) + '\n').join(''));
      const path = writeRunReport(dir, { title: 'sft run <test>', summary: { stage: 'sft', 'final eval/loss': 0.175 }, config: { stage: 'sft' } });
      const html = readFileSync(path, 'utf8');
      assert.doesNotMatch(html, /<script[^>]+src=/, 'no external scripts');
      assert.doesNotMatch(html, /<link[^>]+href=/, 'no external stylesheets');
      assert.match(html, /sft run &lt;test&gt;/);

      // A fresh profile directory per run (playwright passes it as --user-data-dir).
      const browser = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      });
      try {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
        page.on('pageerror', (e) => errors.push(e.message));
        const requests: string[] = [];
        page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
        await page.goto(`file://${path}`);
        await page.waitForSelector('body[data-charts]');
        // Evaluated in the page (a string: this package compiles without the DOM types).
        const result = (await page.evaluate(`(() => {
          const canvases = [...document.querySelectorAll('.chart canvas')];
          return {
            charts: document.body.getAttribute('data-charts'),
            metrics: [...document.querySelectorAll('.chart')].map((e) => e.getAttribute('data-metric')),
            inked: canvases.map((c) => {
              const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              let n = 0;
              for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) n++;
              return n;
            }),
          };
        })()`)) as { charts: string | null; metrics: (string | null)[]; inked: number[] };
        assert.equal(result.charts, '3');
        assert.deepEqual(result.metrics, ['train/loss', 'train/learning_rate', 'eval/loss']);
        assert.equal(result.inked.length, 3);
        for (const n of result.inked) assert.ok(n > 100, `a chart canvas has only ${n} painted pixels`);
        assert.deepEqual(errors, []);
        assert.deepEqual(requests, []);
      } finally {
        await browser.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
