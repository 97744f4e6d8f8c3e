import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createBuiltinTokenizer } from '@posttrain/tokenizer';
import { baseModelCard, baseModelPlan, basePlanSteps, buildBaseModel, readCardRecord } from './base-model';
import type { BaseModelPlan, BaseModelResult } from './base-model';

const SHIPPED = resolve(__dirname, '../../../models/tiny-arith-base');

describe('the shipped base model (models/tiny-arith-base)', () => {
  test("its card records the recipe the code would run (baseModelPlan), with the command, steps, wall time and held-out numbers", () => {
    const card = readFileSync(join(SHIPPED, 'README.md'), 'utf8');
    const record = readCardRecord(card, 'models/tiny-arith-base/README.md');
    assert.deepEqual(record.plan, baseModelPlan(), 'the card was made with another recipe: rebuild the model with `posttrain demo --from-scratch` and commit it');
    assert.equal(record.command, 'posttrain demo --from-scratch');
    assert.equal(record.steps, basePlanSteps(baseModelPlan()));
    assert.equal(record.steps, 3000 + 1500 + 1200);
    assert.ok(record.seconds > 0);
    assert.ok(record.competence.n === baseModelPlan().competence.prompts && record.competence.accuracy >= 0 && record.competence.accuracy <= 1);
    // The card's prose states the same numbers as its record.
    assert.ok(card.includes(`${(100 * record.competence.accuracy).toFixed(1)}%`), 'competence in the text');
    assert.ok(card.includes(`Wall time ${record.seconds} s`));
  });

  test('is a complete Hugging Face directory of the recorded shape, under 20 MB', () => {
    for (const f of ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'README.md']) assert.ok(existsSync(join(SHIPPED, f)), f);
    const config = JSON.parse(readFileSync(join(SHIPPED, 'config.json'), 'utf8')) as Record<string, unknown>;
    const m = baseModelPlan().model;
    assert.deepEqual(
      [config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.num_attention_heads, config.max_position_embeddings],
      [m.hiddenSize, m.intermediateSize, m.numLayers, m.numHeads, m.maxPositionEmbeddings],
    );
    const tokenizerConfig = JSON.parse(readFileSync(join(SHIPPED, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(typeof tokenizerConfig.chat_template, 'string', 'the chat template ships with the tokenizer');
    const bytes = ['config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'README.md'].reduce((a, f) => a + statSync(join(SHIPPED, f)).size, 0);
    assert.ok(bytes <= 20 * 1024 * 1024, `${bytes} bytes`);
  });
});

describe('the questions phase', () => {
  test("its gap is as many tokens as the chat template puts between a user's message and the reply", () => {
    const tok = createBuiltinTokenizer();
    const prompt = tok.applyChatTemplate([{ role: 'user', content: 'What is 45+13?' }], { addGenerationPrompt: true });
    const between = prompt.slice(prompt.indexOf('What is 45+13?') + 'What is 45+13?'.length);
    assert.equal(between, '<|im_end|>\n<|im_start|>assistant\n');
    const gap = baseModelPlan().questions!.gap;
    assert.equal(tok.encode(gap).length, tok.encode(between).length);
    assert.equal(tok.encode(gap).length, 13);
  });
});

describe('buildBaseModel', () => {
  test('a toy recipe: task data, init, lm stage, held-out competence and a card that reads back', async () => {
    const plan: BaseModelPlan = baseModelPlan();
    plan.model = { hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, maxPositionEmbeddings: 256 };
    plan.task = { ...plan.task, corpusSize: 64, evalSize: 20 };
    plan.pretrain = { ...plan.pretrain, steps: 2, batchSize: 4, evalSteps: 2, saveSteps: 2 };
    plan.continuation = { steps: 1, learningRate: 1e-3 };
    plan.questions = { ...plan.questions!, steps: 1, learningRate: 1e-3 };
    plan.competence = { prompts: 6, maxNewTokens: 8 };
    const out = join(mkdtempSync(join(tmpdir(), 'base-model-')), 'base');
    const r = await buildBaseModel(plan, out, { command: 'posttrain demo --from-scratch --quick' });
    assert.equal(r.steps, 4); // 2 steps, 1 of the continuation, 1 of the questions phase
    assert.match(r.runDir, /pretrain-3$/);
    const asked = readFileSync(join(out, 'task', 'corpus-asked.jsonl'), 'utf8');
    assert.match(asked, /(What is \d+[+-]\d+\?|Compute \d+[+-]\d+\.|\d+[+-]\d+=\?) Worked out:\\n(Sure! )?To (add|take) /, 'the asked corpus holds questions at the reply distance');
    assert.equal(r.competence.n, 6);
    // Binomial standard error of the measured fraction over the 6 prompts.
    assert.ok(Math.abs(r.competence.stderr - Math.sqrt((r.competence.accuracy * (1 - r.competence.accuracy)) / 6)) < 1e-12);
    assert.equal(r.competence.samples.length, 6);
    assert.match(r.competence.samples[0].prompt, /^To (add|take) \d+ (and|from) \d+:$/);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'README.md']) assert.ok(existsSync(join(r.modelDir, f)), f);
    const record = readCardRecord(readFileSync(join(r.modelDir, 'README.md'), 'utf8'));
    assert.deepEqual(record.plan, plan);
    assert.equal(record.command, 'posttrain demo --from-scratch --quick');
    assert.ok('eval/loss' in record.corpusEval);
    await assert.rejects(buildBaseModel(plan, out), /already exists and is not empty/);
  });

  test('readCardRecord names what is missing', () => {
    assert.throws(() => readCardRecord('# no record', 'x/README.md'), /x\/README\.md: no ```json posttrain-base-model block/);
    const r = { plan: baseModelPlan(), steps: 1, seconds: 2, corpusEval: {}, backend: 'wasm', competence: { accuracy: 0.5, n: 2, stderr: 0.35, samples: [] }, modelDir: '', runDir: '' } as BaseModelResult;
    const card = baseModelCard(r, 'cmd');
    assert.deepEqual(readCardRecord(card).plan, baseModelPlan());
    assert.throws(() => readCardRecord(card.slice(0, card.lastIndexOf('```')), 'y'), /y: the ```json posttrain-base-model block is not closed/);
  });
});
