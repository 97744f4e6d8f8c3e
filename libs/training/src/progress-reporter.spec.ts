import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressReporter } from './progress-reporter';

function fakeStream(): { stream: NodeJS.WriteStream; out: string[] } {
  const out: string[] = [];
  return { stream: { write: (s: string) => { out.push(s); return true; }, isTTY: false } as unknown as NodeJS.WriteStream, out };
}

describe('ProgressReporter', () => {
  test('TTY: redraws one line in place with step, throughput and metrics', () => {
    const { stream, out } = fakeStream();
    const p = new ProgressReporter({ stream, tty: true, width: 10 });
    p.update({ step: 5, totalSteps: 10, tokensPerSecond: 1234.4, metrics: { 'train/loss': 2.5, other: 1 }, logStep: false });
    p.finish();
    assert.equal(out.length, 2);
    assert.match(out[0], /^\r\[#####\.\.\.\.\.\] step 5\/10 \| 1234 tok\/s \| train\/loss 2\.5000 \| eta \d+s$/);
    assert.equal(out[1], '\n');
  });

  test('no TTY: writes only logging steps, one line each, through the logger when given', () => {
    const { stream, out } = fakeStream();
    const p = new ProgressReporter({ stream, tty: false });
    p.update({ step: 1, totalSteps: 3, tokensPerSecond: 10, metrics: { 'train/loss': 1 }, logStep: false });
    p.update({ step: 2, totalSteps: 3, tokensPerSecond: 10, metrics: { 'train/loss': 1 }, logStep: true });
    assert.equal(out.length, 1);
    assert.match(out[0], /step 2\/3 .*\n$/);
    const records: [string, Record<string, unknown> | undefined][] = [];
    const logger = { info: (msg: string, f?: Record<string, unknown>) => records.push([msg, f]) } as unknown as ConstructorParameters<typeof ProgressReporter>[0] extends infer O ? O extends { logger?: infer L } ? L : never : never;
    const q = new ProgressReporter({ stream, tty: false, logger });
    q.update({ step: 3, totalSteps: 3, tokensPerSecond: 10.6, metrics: { 'train/loss': 0.5 }, logStep: true });
    assert.deepEqual(records, [['train step', { step: 3, totalSteps: 3, tokensPerSecond: 11, 'train/loss': 0.5 }]]);
  });
});
