/**
 * Where a run's per-step metrics go: `metrics.jsonl` (one JSON object per
 * line: `step`, `time`, then the metrics by their TRL/CleanRL names) and
 * TensorBoard event files, behind one small interface.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { AppendFile } from './append-file';
import { TensorBoardWriter } from './tensorboard-writer';

/** One line of metrics.jsonl: the step, wall-clock time in seconds, and metric values. */
export interface MetricsRecord {
  step: number;
  time: number;
  [name: string]: number;
}

export interface MetricsSink {
  write(step: number, metrics: Record<string, number>): void;
  flush(): void;
  close(): void;
}

/** Non-finite numbers are not JSON: NaN, Infinity and -Infinity are written as the strings "NaN", "Infinity", "-Infinity" and read back as numbers. */
function encodeValue(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

/**
 * Reads metrics.jsonl, checking every line; errors name the file and line.
 * Returns [] when the file does not exist.
 */
export function readMetricsJsonl(path: string): MetricsRecord[] {
  if (!existsSync(path)) return [];
  const out: MetricsRecord[] = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new Error(`${path}:${i + 1}: invalid JSON (${(e as Error).message})`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${path}:${i + 1}: expected a JSON object, got ${text.slice(0, 80)}`);
    const rec: Record<string, number> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v === 'number') rec[k] = v;
      else if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') rec[k] = Number(v);
      else throw new Error(`${path}:${i + 1}: field ${JSON.stringify(k)} is ${JSON.stringify(v)}, expected a number`);
    }
    if (!Number.isInteger(rec.step)) throw new Error(`${path}:${i + 1}: field "step" is ${JSON.stringify((raw as Record<string, unknown>).step)}, expected an integer`);
    if (typeof rec.time !== 'number') rec.time = 0;
    out.push(rec as MetricsRecord);
  });
  return out;
}

/** Appends metric records to a JSONL file. */
export class JsonlMetricsSink implements MetricsSink {
  private readonly file: AppendFile;

  constructor(readonly path: string, private readonly now: () => number = () => Date.now() / 1000) {
    this.file = new AppendFile(path, 'JsonlMetricsSink');
  }

  write(step: number, metrics: Record<string, number>): void {
    this.file.append(() => {
      const rec: Record<string, number | string> = { step, time: this.now() };
      for (const [k, v] of Object.entries(metrics)) {
        if (k === 'step' || k === 'time') throw new Error(`JsonlMetricsSink: metric name ${JSON.stringify(k)} is reserved`);
        rec[k] = encodeValue(v);
      }
      return JSON.stringify(rec) + '\n';
    });
  }

  flush(): void {
    this.file.flush();
  }

  close(): void {
    this.file.close();
  }
}

/**
 * Drops every record after `step` from a metrics.jsonl (a run resumed from the
 * checkpoint at `step` writes those steps again). Returns how many were kept.
 */
export function truncateMetricsJsonl(path: string, step: number): number {
  if (!existsSync(path)) return 0;
  const lines = readFileSync(path, 'utf8').split('\n');
  const last = lines.findLastIndex((l) => l.trim() !== '');
  const kept: string[] = [];
  for (let i = 0; i <= last; i++) {
    const l = lines[i];
    if (l.trim() === '') continue;
    let s: unknown;
    try {
      s = (JSON.parse(l) as { step?: unknown }).step;
    } catch (err) {
      // A process killed mid-append leaves a torn last line: it belongs to no checkpoint, drop it.
      if (i === last) break;
      throw new Error(`${path}:${i + 1}: not valid JSON (${(err as Error).message}); only a torn last line is dropped on resume, so this file needs repair`);
    }
    if (typeof s !== 'number') throw new Error(`${path}:${i + 1}: field "step" is ${JSON.stringify(s)}, expected an integer`);
    if (s <= step) kept.push(l);
  }
  writeFileSync(path, kept.map((l) => l + '\n').join(''));
  return kept.length;
}

/** A sink over a TensorBoard event file. */
export class TensorBoardMetricsSink implements MetricsSink {
  private readonly writer: TensorBoardWriter;

  constructor(logDir: string) {
    this.writer = new TensorBoardWriter(logDir);
  }

  get path(): string {
    return this.writer.path;
  }

  write(step: number, metrics: Record<string, number>): void {
    this.writer.scalars(step, metrics);
  }

  flush(): void {
    this.writer.flush();
  }

  close(): void {
    this.writer.close();
  }
}

/** Writes to every sink. */
export function fanOutMetricsSinks(sinks: MetricsSink[]): MetricsSink {
  return {
    write: (step, metrics) => sinks.forEach((s) => s.write(step, metrics)),
    flush: () => sinks.forEach((s) => s.flush()),
    close: () => sinks.forEach((s) => s.close()),
  };
}
