import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlMetricsSink, readMetricsJsonl, truncateMetricsJsonl } from './metrics-sink';

describe('metrics.jsonl', () => {
  test('round-trips values, non-finite ones included, and truncates after a step', () => {
    const dir = mkdtempSync(join(tmpdir(), 'metrics-'));
    try {
      const path = join(dir, 'metrics.jsonl');
      const sink = new JsonlMetricsSink(path, () => 5);
      sink.write(1, { 'train/loss': 2.5 });
      sink.write(2, { 'train/loss': Number.NaN, 'train/grad_norm': Number.POSITIVE_INFINITY });
      sink.write(3, { 'train/loss': 1.25 });
      sink.close();
      assert.equal(readFileSync(path, 'utf8').split('\n')[1], '{"step":2,"time":5,"train/loss":"NaN","train/grad_norm":"Infinity"}');
      const recs = readMetricsJsonl(path);
      assert.equal(recs.length, 3);
      assert.equal(recs[0]['train/loss'], 2.5);
      assert.ok(Number.isNaN(recs[1]['train/loss']));
      assert.equal(recs[1]['train/grad_norm'], Number.POSITIVE_INFINITY);
      assert.equal(truncateMetricsJsonl(path, 2), 2);
      assert.deepEqual(readMetricsJsonl(path).map((r) => r.step), [1, 2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('truncating for a resume drops a torn last line, and names the file and line of a bad one before it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'metrics-'));
    try {
      const path = join(dir, 'metrics.jsonl');
      writeFileSync(path, '{"step":1,"time":0}\n{"step":2,"time":0}\n{"step":3,"ti');
      assert.equal(truncateMetricsJsonl(path, 5), 2);
      assert.equal(readFileSync(path, 'utf8'), '{"step":1,"time":0}\n{"step":2,"time":0}\n');
      writeFileSync(path, '{"step":1,"time":0}\n{"step":2,"ti\n{"step":3,"time":0}\n');
      assert.throws(() => truncateMetricsJsonl(path, 5), new RegExp(`${path.replace(/[.]/g, '\\.')}:2: not valid JSON`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('reading names the file and line of a bad record', () => {
    const dir = mkdtempSync(join(tmpdir(), 'metrics-'));
    try {
      const path = join(dir, 'metrics.jsonl');
      writeFileSync(path, '{"step":1,"time":0}\n{"step":2,"time":0,"x":"a"}\n');
      assert.throws(() => readMetricsJsonl(path), new RegExp(`${path.replace(/[.]/g, '\\.')}:2: field "x" is "a", expected a number`));
      writeFileSync(path, '{"step":1,"time":0}\nnot json\n');
      assert.throws(() => readMetricsJsonl(path), /:2: invalid JSON/);
      writeFileSync(path, '{"time":0}\n');
      assert.throws(() => readMetricsJsonl(path), /:1: field "step" is undefined, expected an integer/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
