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

/**
 * Renders pipeline events: a line when a stage starts and ends, and during a
 * training stage a progress bar redrawn in place on a TTY (libs/training's
 * ProgressReporter), or a log line every few steps otherwise.
 */
export function pipelineProgress(stream: NodeJS.WritableStream & { isTTY?: boolean }, options: PipelineProgressOptions = {}): (e: PipelineEvent) => void {
  const tty = options.tty ?? Boolean(stream.isTTY);
  const every = options.everySteps ?? 10;
  let bar: ProgressReporter | null = null;
  let last = Date.now();
  return (e) => {
    if (e.type === 'stage-start') {
      stream.write(`[${e.index}/${e.total}] ${e.stage}: ${e.title}\n`);
      last = Date.now();
      bar = tty ? new ProgressReporter({ stream: stream as NodeJS.WriteStream, tty: true, keys: ['train/loss', 'rewards/accuracies', 'rewards/margins', 'objective/scores', 'objective/kl'] }) : null;
    } else if (e.type === 'step') {
      const now = Date.now();
      const tokensPerSecond = (e.metrics['sft/num_tokens'] ?? 0) / Math.max(1e-3, (now - last) / 1000);
      last = now;
      if (bar) bar.update({ step: e.step, totalSteps: e.totalSteps, tokensPerSecond, metrics: e.metrics, logStep: true });
      else if (e.step % every === 0 || e.step === e.totalSteps) {
        const extra = ['rewards/accuracies', 'objective/scores', 'objective/kl'].filter((k) => k in e.metrics).map((k) => ` ${k} ${e.metrics[k].toFixed(4)}`);
        stream.write(`  ${e.stage} step ${e.step}/${e.totalSteps} loss ${(e.metrics['train/loss'] ?? Number.NaN).toFixed(4)}${extra.join('')}\n`);
      }
    } else {
      bar?.finish();
      bar = null;
      stream.write(`  done in ${e.seconds.toFixed(1)} s: ${fmt(e.metrics)}\n`);
    }
  };
}
