import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pipelineProgress } from './pipeline-progress';
import type { PipelineEvent } from './pipeline-types';

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return { stream: new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }), text: () => chunks.join('') };
}

const events: PipelineEvent[] = [
  { type: 'stage-start', stage: 'sft-48', title: 'SFT on 48 examples', index: 4, total: 8 },
  ...[1, 2, 3, 4].map((step): PipelineEvent => ({ type: 'step', stage: 'sft-48', step, totalSteps: 4, metrics: { 'train/loss': 2 / step } })),
  { type: 'stage-end', stage: 'sft-48', title: 'SFT on 48 examples', seconds: 1.25, metrics: { 'eval/loss': 0.5, steps: 4 } },
];

describe('pipelineProgress', () => {
  test('without a TTY: stage lines and a step line every N steps and at the last', () => {
    const s = sink();
    const on = pipelineProgress(s.stream, { tty: false, everySteps: 2 });
    events.forEach(on);
    assert.equal(s.text(), '[4/8] sft-48: SFT on 48 examples\n  sft-48 step 2/4 loss 1.0000\n  sft-48 step 4/4 loss 0.5000\n  done in 1.3 s: eval/loss 0.500, steps 4\n');
  });

  test('on a TTY: one bar redrawn in place with carriage returns, ended by a newline before the stage summary', () => {
    const s = sink();
    const on = pipelineProgress(s.stream, { tty: true });
    events.forEach(on);
    const text = s.text();
    assert.equal((text.match(/\r\[/g) ?? []).length, 4, 'one redraw per step');
    assert.match(text, /\r\[#{24}\] step 4\/4 \| \d+ tok\/s \| train\/loss 0\.5000/);
    assert.match(text, /\n  done in 1\.3 s: eval\/loss 0\.500, steps 4\n$/);
  });
});
