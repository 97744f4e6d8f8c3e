import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyConfigOverrides } from './config-overrides';
import { loadRunConfig, parseRunConfig, RunConfigError } from './run-config';

const base = { stage: 'sft', model: 'models/tiny', dataset: { train: 'train.jsonl' } };

describe('parseRunConfig', () => {
  test('fills defaults (TRL-like) and keeps only the section of the stage', () => {
    const c = parseRunConfig(base);
    assert.equal(c.train.learning_rate, 5e-5);
    assert.equal(c.train.lr_scheduler, 'linear');
    assert.equal(c.train.max_grad_norm, 1);
    assert.equal(c.train.gradient_accumulation_steps, 1);
    assert.deepEqual(c.sft, { max_length: 1024, packing: false, assistant_only_loss: true, completion_only_loss: true });
    assert.equal(c.dpo, null);
    assert.equal(c.rm, null);
    assert.equal(c.lora, null);
    assert.equal(c.output_dir, 'runs');
  });

  test('a lora section gets its defaults; dpo reference defaults to the policy copy', () => {
    const c = parseRunConfig({ ...base, stage: 'dpo', dataset: { train: 'p.jsonl' }, lora: { r: 4 } });
    assert.deepEqual(c.lora, { r: 4, alpha: 16, dropout: 0, target_modules: ['q_proj', 'v_proj'] });
    assert.deepEqual(c.dpo, { max_length: 1024, beta: 0.1, loss_type: 'sigmoid', label_smoothing: 0, rpo_alpha: null, reference: { model: null, batch_size: 8 } });
  });

  const errors: [string, unknown, RegExp][] = [
    ['unknown top-level key', { ...base, learning_rate: 1 }, /^config: learning_rate: unknown key \(known keys: stage, model/],
    ['unknown nested key', { ...base, train: { lr: 1 } }, /^config: train\.lr: unknown key \(known keys of train: max_steps, /],
    ['wrong type', { ...base, train: { batch_size: '8' } }, /^config: train\.batch_size: expected an integer >= 1, got string "8"$/],
    ['out of range', { ...base, train: { learning_rate: 0 } }, /^config: train\.learning_rate: expected a finite number > 0, got number 0$/],
    ['bad enum', { ...base, train: { lr_scheduler: 'step' } }, /train\.lr_scheduler: expected one of "constant", "linear", "cosine", got string "step"/],
    ['missing required', { stage: 'sft', dataset: { train: 'x' } }, /^config: model: required key is missing; expected a non-empty string$/],
    ['missing dataset.train', { stage: 'sft', model: 'm' }, /^config: dataset\.train: required key is missing/],
    ['bad stage', { ...base, stage: 'kto' }, /^config: stage: expected one of "lm", "sft", "rm", "dpo", "ppo", "grpo", got string "kto"$/],
    ['run_id that is not a directory name', { ...base, run_id: '../x' }, /^config: run_id: expected 1-64 characters of \[a-z0-9_-\] \(a directory name\), got string "\.\.\/x"$/],
    ['fractional epochs for an offline stage', { ...base, train: { epochs: 1.5 } }, /^config: train\.epochs: expected a whole number of epochs for stage "sft", got number 1\.5$/],
    ['an online key for an offline stage', { ...base, dataset: { train: 't', fields: { ground_truth: 'answer' } } }, /^config: dataset\.fields\.ground_truth: this key applies to stages "ppo", "grpo" only, but stage is "sft"$/],
    ['section of another stage', { ...base, dpo: { beta: 0.1 } }, /^config: dpo: this section applies to stage "dpo" only, but stage is "sft"$/],
    ['bad lora target', { ...base, lora: { target_modules: ['q_proj', 'qkv'] } }, /^config: lora\.target_modules\[1\]: expected one of "q_proj", .*got string "qkv"$/],
    ['resume without run_id', { ...base, resume: true }, /resume: true needs run_id/],
    ['eval and eval_fraction', { ...base, dataset: { train: 't', eval: 'e', eval_fraction: 0.1 } }, /dataset\.eval_fraction: 0\.1 cannot be combined with dataset\.eval "e"/],
    ['label smoothing with hinge', { ...base, stage: 'dpo', dpo: { loss_type: 'hinge', label_smoothing: 0.1 } }, /dpo\.label_smoothing: 0\.1 applies only to loss_type "sigmoid" or "robust", got loss_type "hinge"/],
    ['not an object', [1, 2], /^config: \(top level\): expected an object of config keys, got list \[1,2\]$/],
  ];
  for (const [name, raw, re] of errors) {
    test(`rejects ${name}`, () => assert.throws(() => parseRunConfig(raw), (e: unknown) => e instanceof RunConfigError && re.test(e.message)));
  }
});

describe('applyConfigOverrides', () => {
  test('types values by the schema and creates sections', () => {
    const raw = applyConfigOverrides(base, ['train.learning_rate=3e-4', 'train.max_grad_norm=null', 'sft.packing=true', 'lora.target_modules=q_proj,v_proj', 'run_id=x1']);
    const c = parseRunConfig(raw);
    assert.equal(c.train.learning_rate, 3e-4);
    assert.equal(c.train.max_grad_norm, null);
    assert.equal(c.sft!.packing, true);
    assert.deepEqual(c.lora!.target_modules, ['q_proj', 'v_proj']);
    assert.equal(c.run_id, 'x1');
    assert.equal((base.dataset as { train: string }).train, 'train.jsonl', 'input untouched');
  });

  test('types the lists of the RL sections: comma-separated, or a YAML / JSON list', () => {
    const raw = applyConfigOverrides({ stage: 'grpo', model: 'm', dataset: { train: 'p.jsonl' }, train: { learning_rate: 1e-3 }, grpo: { prompts_per_step: 2, num_generations: 4 } }, [
      'grpo.services.sampler_addresses=127.0.0.1:1,127.0.0.1:2',
      'grpo.stop_token_ids=[2, 3]',
      'grpo.stop=["\\n\\n"]',
      'grpo.reward_components=[{name: fmt, weight: 1, format: {answer_marker: "Answer:"}}]',
    ]);
    const grpo = parseRunConfig(raw).grpo!;
    assert.deepEqual(grpo.services.sampler_addresses, ['127.0.0.1:1', '127.0.0.1:2']);
    assert.deepEqual(grpo.stop_token_ids, [2, 3]);
    assert.deepEqual(grpo.stop, ['\n\n']);
    assert.deepEqual(grpo.reward_components, [{ name: 'fmt', weight: 1, format: { answer_marker: 'Answer:' } }]);
  });

  test('names the key and value of a bad override', () => {
    assert.throws(() => applyConfigOverrides(base, ['train.lr=1']), /--set train\.lr=1: unknown key "train\.lr" \(known keys of train: max_steps, epochs, /);
    assert.throws(() => applyConfigOverrides(base, ['train.batch_size=eight']), /--set train\.batch_size=eight: expected an integer >= 1, got "eight"/);
    assert.throws(() => applyConfigOverrides(base, ['sft.packing=yes']), /--set sft\.packing=yes: expected true or false, got "yes"/);
    assert.throws(() => applyConfigOverrides(base, ['train']), /--set train: expected key=value/);
    assert.throws(() => applyConfigOverrides(base, ['train=1']), /train is a section; set one of its keys/);
    // Typed but out of range: caught by validation, naming the key.
    assert.throws(() => parseRunConfig(applyConfigOverrides(base, ['train.batch_size=0'])), /train\.batch_size: expected an integer >= 1, got number 0/);
  });
});

describe('loadRunConfig', () => {
  test('reads YAML, applies overrides, and prefixes errors with the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    try {
      const path = join(dir, 'sft.yaml');
      writeFileSync(path, 'stage: sft\nmodel: m\ndataset:\n  train: t.jsonl\ntrain:\n  max_steps: 10\n');
      const c = await loadRunConfig(path, ['train.max_steps=20']);
      assert.equal(c.train.max_steps, 20);
      writeFileSync(path, 'stage: sft\nmodel: m\ndataset:\n  train: t.jsonl\ntrain:\n  max_step: 10\n');
      await assert.rejects(loadRunConfig(path), new RegExp(`^RunConfigError: ${path.replace(/[.]/g, '\\.')}: train\\.max_step: unknown key`));
      writeFileSync(path, 'stage: [unclosed\n');
      await assert.rejects(loadRunConfig(path), /invalid YAML/);
      await assert.rejects(loadRunConfig(join(dir, 'missing.yaml')), /missing\.yaml: cannot read the config file \(ENOENT\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
