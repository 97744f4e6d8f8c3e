import { ProgressReporter } from '@posttrain/training';
import type { PipelineEvent } from './pipeline-types';

export interface PipelineProgressOptions {
  /** Force the mode; default stream.isTTY. */
  tty?: boolean;
  /** Without a TTY, a step line every this many steps (and the last); default 10. */
  everySteps?: number;
}

function fmt(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .filter(([k]) => !k.startsWith('records/'))
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(3)}`)
    .join(', ');
}

const BAR_KEYS = ['train/loss', 'rewards/accuracies', 'rewards/margins', 'objective/scores', 'objective/kl'];

/**
 * Renders pipeline events: a line when a stage starts and ends, and while
 * stages train a progress line redrawn in place on a TTY (libs/training's
 * ProgressReporter bar for one stage; a short "stage step/total loss" per
 * stage when several run at once), or a log line every few steps otherwise.
 */
export function pipelineProgress(stream: NodeJS.WritableStream & { isTTY?: boolean }, options: PipelineProgressOptions = {}): (e: PipelineEvent) => void {
  const tty = options.tty ?? Boolean(stream.isTTY);
  const every = options.everySteps ?? 10;
  // The stages running, in the order they started, with their bar and latest text.
  const running = new Map<string, { bar: ProgressReporter; last: number; text: string; short: string }>();
  let drawn = '';
  const clear = (): void => {
    if (drawn !== '') stream.write(`\r${' '.repeat(drawn.length)}\r`);
    drawn = '';
  };
  const draw = (): void => {
    const shown = [...running.entries()].filter(([, r]) => r.text !== '');
    const line = shown.length === 1 ? `${shown[0][0]} ${shown[0][1].text}` : shown.map(([, r]) => r.short).join(' | ');
    if (line === '') return;
    stream.write(`\r${line}${' '.repeat(Math.max(0, drawn.length - line.length))}`);
    drawn = line;
  };
  /** A line above the progress line (which is redrawn below it). */
  const print = (text: string): void => {
    if (tty) clear();
    stream.write(text);
    if (tty) draw();
  };
  return (e) => {
    if (e.type === 'stage-start') {
      running.set(e.stage, { bar: new ProgressReporter({ stream: stream as NodeJS.WriteStream, tty: false, keys: BAR_KEYS }), last: Date.now(), text: '', short: '' });
      print(`[${e.index}/${e.total}] ${e.stage}: ${e.title}\n`);
    } else if (e.type === 'step') {
      const r = running.get(e.stage);
      if (!r) return;
      const now = Date.now();
      const tokensPerSecond = (e.metrics['sft/num_tokens'] ?? 0) / Math.max(1e-3, (now - r.last) / 1000);
      r.last = now;
      if (tty) {
        r.text = r.bar.format({ step: e.step, totalSteps: e.totalSteps, tokensPerSecond, metrics: e.metrics, logStep: true });
        r.short = `${e.stage} ${e.step}/${e.totalSteps} loss ${(e.metrics['train/loss'] ?? Number.NaN).toFixed(3)}`;
        draw();
      } else if (e.step % every === 0 || e.step === e.totalSteps) {
        const extra = ['rewards/accuracies', 'objective/scores', 'objective/kl'].filter((k) => k in e.metrics).map((k) => ` ${k} ${e.metrics[k].toFixed(4)}`);
        stream.write(`  ${e.stage} step ${e.step}/${e.totalSteps} loss ${(e.metrics['train/loss'] ?? Number.NaN).toFixed(4)}${extra.join('')}\n`);
      }
    } else {
      running.delete(e.stage);
      print(`  ${e.stage} done in ${e.seconds.toFixed(1)} s: ${fmt(e.metrics)}\n`);
    }
  };
}
