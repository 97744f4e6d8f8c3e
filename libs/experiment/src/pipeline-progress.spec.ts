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
    assert.equal(s.text(), '[4/8] sft-48: SFT on 48 examples\n  sft-48 step 2/4 loss 1.0000\n  sft-48 step 4/4 loss 0.5000\n  sft-48 done in 1.3 s: eval/loss 0.500, steps 4\n');
  });

  test('on a TTY: one bar redrawn in place with carriage returns, cleared before the stage summary', () => {
    const s = sink();
    const on = pipelineProgress(s.stream, { tty: true });
    events.forEach(on);
    const text = s.text();
    assert.equal((text.match(/\rsft-48 \[/g) ?? []).length, 4, 'one redraw per step');
    assert.match(text, /\rsft-48 \[#{24}\] step 4\/4 \| \d+ tok\/s \| train\/loss 0\.5000/);
    assert.match(text, /\r +\r  sft-48 done in 1\.3 s: eval\/loss 0\.500, steps 4\n$/);
  });

  test('on a TTY with two stages at once: one line with both, and a stage line printed above it, which is redrawn', () => {
    const s = sink();
    const on = pipelineProgress(s.stream, { tty: true });
    on({ type: 'stage-start', stage: 'sft-300', title: 'SFT', index: 1, total: 3 });
    on({ type: 'stage-start', stage: 'grpo-base', title: 'GRPO', index: 2, total: 3 });
    on({ type: 'step', stage: 'sft-300', step: 5, totalSteps: 380, metrics: { 'train/loss': 1.5 } });
    on({ type: 'step', stage: 'grpo-base', step: 1, totalSteps: 16, metrics: { 'train/loss': 0.25 } });
    assert.match(s.text(), /\rsft-300 5\/380 loss 1\.500 \| grpo-base 1\/16 loss 0\.250 *$/);
    on({ type: 'stage-end', stage: 'grpo-base', title: 'GRPO', seconds: 2, metrics: { steps: 16 } });
    // The summary goes above; the line left is SFT's bar alone.
    assert.match(s.text(), /\r +\r  grpo-base done in 2\.0 s: steps 16\n\rsft-300 \[#?\.{23,24}\] step 5\/380 [^\n]*$/);
  });
});
