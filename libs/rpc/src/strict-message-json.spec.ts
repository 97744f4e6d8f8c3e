import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkMessageJson } from './strict-message-json';

describe('checkMessageJson', () => {
  const ok = {
    run_id: 'grpo-1',
    baseModelDir: 'models/sft',
    dataset: { paths: ['data/prompts.jsonl'], format: 'DATASET_FORMAT_PROMPT_ONLY' },
    seed: 3,
    grpo: {
      group_size: 4,
      kl: { coefficient: 0.04, estimator: 'KL_ESTIMATOR_K3' },
      reward_components: [{ name: 'correct', weight: 1, numeric_match: { extraction: { mode: 'EXTRACTION_MODE_AFTER_MARKER', pattern: 'Answer:' } } }],
      sampling: { temperature: 1, max_new_tokens: 32 },
    },
  };

  test('accepts snake_case and camelCase keys, enum names, nested messages and lists', () => {
    checkMessageJson('posttrain.v1.RunSpec', ok, 'grpo.yaml');
  });

  test('names the path of an unknown key, a wrong type, a bad enum and two oneof members', () => {
    const cases: [unknown, RegExp][] = [
      [{ ...ok, grpo: { ...ok.grpo, group_sise: 4 } }, /grpo\.yaml: grpo\.group_sise: unknown key; GrpoSpec has services, reward_components, prompts_per_step, group_size/],
      [{ ...ok, seed: 'x' }, /seed: expected a non-negative integer, got "x"/],
      [{ ...ok, grpo: { ...ok.grpo, kl: { estimator: 'K3' } } }, /grpo\.kl\.estimator: got "K3", expected one of KL_ESTIMATOR_UNSPECIFIED, KL_ESTIMATOR_K1/],
      [{ ...ok, ppo: {} }, /ppo: only one of sft, reward_model, dpo, ppo, grpo may be set \(grpo is set too\)/],
      [{ ...ok, dataset: { paths: 'one.jsonl' } }, /dataset\.paths: expected a list, got "one\.jsonl"/],
      [{ ...ok, grpo: { ...ok.grpo, reward_components: [{ regex: { pattern: 1 } }] } }, /grpo\.reward_components\[0\]\.regex\.pattern: expected a string, got 1/],
      [[1], /\(top level\): expected an object \(message RunSpec\)/],
    ];
    for (const [value, re] of cases) assert.throws(() => checkMessageJson('posttrain.v1.RunSpec', value, 'grpo.yaml'), re);
  });
});
