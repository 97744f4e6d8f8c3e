import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseTaskOptions } from '@posttrain/task';
import { baseModelPlan, baseTaskOptions } from './base-model';
import { pipelinePlan, sftSizesOf, stageSteps } from './pipeline-plan';

describe('pipelinePlan', () => {
  test('demo trains one SFT size, experiment sweeps ascending sizes; every plan is valid task input', () => {
    for (const quick of [false, true]) {
      const demo = pipelinePlan('demo', { quick });
      const exp = pipelinePlan('experiment', { quick });
      assert.equal(demo.sweep, false);
      assert.equal(demo.task.sftSizes.length, 1);
      assert.equal(exp.sweep, true);
      assert.ok(exp.task.sftSizes.length >= 2);
      for (const p of [demo, exp]) {
        // libs/task validates the options the pipeline passes (ascending sizes, digit range, operations).
        assert.doesNotThrow(() => parseTaskOptions({ ...baseTaskOptions(p.base), ...p.task, sftCoreSize: p.mainSftSize }));
        assert.ok(p.eval.prompts <= p.base.task.evalSize && p.eval.pairs <= p.base.task.evalSize && p.eval.prosePrompts <= p.base.task.evalSize, 'eval sizes fit the held-out split');
        assert.ok(p.grpo !== null && p.grpo.groupSize >= 2 && p.ppo !== null);
      }
    }
    assert.deepEqual(pipelinePlan('experiment').task.sftSizes, [10, 30, 100, 300, 1000]);
    // The experiment post-trains from the demo's SFT size, so its claims 2-4 repeat the demo's over seeds.
    assert.equal(pipelinePlan('experiment').mainSftSize, pipelinePlan('demo').mainSftSize);
    for (const name of ['demo', 'experiment'] as const) {
      for (const quick of [false, true]) {
        const p = pipelinePlan(name, { quick });
        assert.ok(p.task.sftSizes.includes(p.mainSftSize), `${name}${quick ? ' --quick' : ''}: mainSftSize ${p.mainSftSize} is one of the sizes`);
        assert.deepEqual(sftSizesOf(p), p.sweep ? p.task.sftSizes : [p.mainSftSize]);
      }
    }
    assert.throws(() => sftSizesOf({ ...pipelinePlan('demo'), mainSftSize: 7 }), /mainSftSize: got 7, expected one of task\.sftSizes \(300\)/);
    // Post-training starts from the shipped base: its recipe and held-out split are the plan's.
    assert.deepEqual(pipelinePlan('demo').base, baseModelPlan());
  });

  test('SFT trains 25 epochs capped at 475 steps: the demo\'s 300 examples run their 25 epochs (19 x 25 = 475 steps), 1000 stop at 475', () => {
    const sft = pipelinePlan('experiment').sft;
    assert.equal(stageSteps(sft, 10), null); // 1 step a pass, 25 passes
    assert.equal(stageSteps(sft, 300), null);
    assert.equal(stageSteps(sft, 304), null); // 19 steps a pass: 475, not over the cap
    assert.equal(stageSteps(sft, 305), 475); // 20 steps a pass: 500
    assert.equal(stageSteps(sft, 1000), 475);
    assert.equal(stageSteps({ ...sft, steps: 7 }, 1000), 7);
    assert.equal(stageSteps({ ...sft, maxSteps: undefined }, 1000), null);
    assert.deepEqual(pipelinePlan('demo').sft, sft);
  });

  test('the experiment post-trains with the demo\'s settings, so its claims 2-4 repeat the demo\'s over seeds', () => {
    const demo = pipelinePlan('demo');
    const experiment = pipelinePlan('experiment');
    for (const k of ['sft', 'mainSftSize', 'rm', 'ppo', 'dpo', 'grpo'] as const) assert.deepEqual(experiment[k], demo[k], k);
    assert.equal(experiment.sweep, true);
    assert.equal(demo.sweep, false);
  });

  test('a bad seed is refused with the value and the range', () => {
    assert.throws(() => pipelinePlan('demo', { seed: -1 }), /seed: got -1, expected an integer in \[0, 4294967295\]/);
    assert.throws(() => pipelinePlan('demo', { seed: 1.5 }), /seed: got 1\.5/);
  });
});
