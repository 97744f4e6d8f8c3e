/**
 * Training progress: on a TTY a one-line bar redrawn in place (step,
 * throughput, key metrics, ETA); otherwise a log line every logging step, so
 * CI logs and `kubectl logs` stay readable.
 */
import type { Logger } from '@posttrain/telemetry';

export interface ProgressUpdate {
  step: number;
  totalSteps: number;
  tokensPerSecond: number;
  metrics: Record<string, number>;
  /** True on logging steps (non-TTY output writes only these). */
  logStep: boolean;
}

export interface ProgressReporterOptions {
  stream?: NodeJS.WriteStream;
  /** Force the mode; defaults to stream.isTTY. */
  tty?: boolean;
  logger?: Logger;
  /** Metric names shown, in order, when present. */
  keys?: string[];
  width?: number;
}

const DEFAULT_KEYS = ['train/loss', 'rewards/accuracies', 'rewards/margins', 'eval/loss', 'train/learning_rate'];

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4) ? v.toExponential(2) : v.toFixed(4);
}

export class ProgressReporter {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly start = Date.now();
  private startStep: number | null = null;
  private lastLine = '';

  constructor(private readonly options: ProgressReporterOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean(this.stream.isTTY);
  }

  /** The text of one progress line (exposed for tests). */
  format(u: ProgressUpdate): string {
    const width = this.options.width ?? 24;
    const done = Math.min(width, Math.round((u.step / Math.max(1, u.totalSteps)) * width));
    const bar = '#'.repeat(done) + '.'.repeat(width - done);
    if (this.startStep === null) this.startStep = u.step - 1;
    const elapsed = (Date.now() - this.start) / 1000;
    const per = elapsed / Math.max(1, u.step - this.startStep);
    const eta = Math.max(0, (u.totalSteps - u.step) * per);
    const shown = (this.options.keys ?? DEFAULT_KEYS).filter((k) => k in u.metrics).map((k) => `${k} ${fmt(u.metrics[k])}`);
    return `[${bar}] step ${u.step}/${u.totalSteps} | ${u.tokensPerSecond.toFixed(0)} tok/s | ${shown.join(' | ')} | eta ${eta.toFixed(0)}s`;
  }

  update(u: ProgressUpdate): void {
    if (this.tty) {
      const line = this.format(u);
      this.stream.write(`\r${line}${' '.repeat(Math.max(0, this.lastLine.length - line.length))}`);
      this.lastLine = line;
    } else if (u.logStep) {
      if (this.options.logger) this.options.logger.info('train step', { step: u.step, totalSteps: u.totalSteps, tokensPerSecond: Math.round(u.tokensPerSecond), ...u.metrics });
      else this.stream.write(this.format(u) + '\n');
    }
  }

  /** Ends the in-place line. */
  finish(): void {
    if (this.tty && this.lastLine !== '') this.stream.write('\n');
    this.lastLine = '';
  }
}
