import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@posttrain/backend';
import { readEvalData } from '@posttrain/experiment';
import { initModelDir } from '@posttrain/model';
import { buildBuiltinTokenizerFiles, createBuiltinTokenizer } from '@posttrain/tokenizer';
import { UsageError } from '../command';
import { captureIO } from '../test-io';
import { evalCommand, runEvaluation } from './eval';

const dir = mkdtempSync(join(tmpdir(), 'cli-eval-'));
const modelDir = join(dir, 'tiny');
const jsonl = (name: string, records: unknown[]): string => {
  const p = join(dir, name);
  writeFileSync(p, records.map((r) => JSON.stringify(r) + '\n').join(''));
  return p;
};
const user = (content: string) => [{ role: 'user', content }];
const prompts = jsonl('prompts.jsonl', [
  { prompt: user('What is 12+30?'), answer: '42' },
  { prompt: user('What is 50-8?'), answer: '42' },
  { prompt: user('What is 6*7?'), answer: '42' },
]);
const pairs = jsonl('pairs.jsonl', [
  { prompt: user('1+1?'), chosen: [{ role: 'assistant', content: 'Answer: 2' }], rejected: [{ role: 'assistant', content: 'Answer: 3' }] },
  { prompt: user('2+2?'), chosen: [{ role: 'assistant', content: 'Answer: 4' }], rejected: [{ role: 'assistant', content: 'Answer: 5, I think' }] },
]);

before(async () => {
  await initBackend({ backend: 'cpu', logger: { info: () => undefined } });
  const tok = createBuiltinTokenizer();
  const f = buildBuiltinTokenizerFiles();
  await initModelDir(
    modelDir,
    { vocabSize: tok.vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 256, eosTokenId: tok.eosTokenId, padTokenId: tok.padTokenId },
    { seed: 3, assets: { 'tokenizer.json': JSON.stringify(f.tokenizerJson), 'tokenizer_config.json': JSON.stringify(f.tokenizerConfig), 'special_tokens_map.json': JSON.stringify(f.specialTokensMap) } },
  );
});

describe('posttrain eval: plumbing with a stub generator', () => {
  test('answer accuracy and format rate of known replies, --n limits the prompts', async () => {
    const data = await readEvalData(prompts);
    const replies = ['Answer: 42', 'Answer: 41', 'forty-two'];
    const seen: string[] = [];
    const stub = async (ps: readonly (string | { role: string; content: string }[])[]) =>
      ps.map((p) => {
        seen.push(typeof p === 'string' ? p : p[0].content);
        return replies[seen.length - 1];
      });
    const r = await runEvaluation(data, modelDir, { maxNewTokens: 8, batchSize: 2, perToken: false }, stub);
    // correct 1,0,0 -> 1/3; format 1,1,0 -> 2/3; reward 1.1, 0.1, 0 -> 0.4
    assert.equal(r.kind, 'answers');
    assert.equal(r.n, 3);
    assert.ok(Math.abs(r.answers!.accuracy! - 1 / 3) < 1e-12);
    assert.ok(Math.abs(r.answers!.formatRate! - 2 / 3) < 1e-12);
    assert.ok(Math.abs(r.answers!.meanReward - 0.4) < 1e-12);
    assert.deepEqual(seen, ['What is 12+30?', 'What is 50-8?', 'What is 6*7?']);
    const two = await runEvaluation(data, modelDir, { n: 2, maxNewTokens: 8, batchSize: 2, perToken: false }, async (ps) => ps.map(() => 'Answer: 42'));
    assert.equal(two.n, 2);
    assert.equal(two.answers!.accuracy, 1);
  });

  test('--rules replaces the task reward', async () => {
    const rules = join(dir, 'rules.yaml');
    writeFileSync(rules, '- { name: has42, rule: regex, params: { pattern: "42" } }\n');
    const data = await readEvalData(prompts);
    const r = await runEvaluation(data, modelDir, { maxNewTokens: 8, batchSize: 4, perToken: false, rulesFile: rules }, async () => ['42', 'no', 'x42']);
    assert.equal(r.answers!.accuracy, null);
    assert.ok(Math.abs(r.answers!.components.has42 - 2 / 3) < 1e-12);
  });
});

describe('posttrain eval: a real tiny model', () => {
  test('greedy replies on prompts: counts and fractions in range; JSON output', async () => {
    const io = captureIO();
    const code = await evalCommand.run(['--model', modelDir, '--data', prompts, '--max-new-tokens', '6', '--json'], io);
    assert.equal(code, 0, io.err());
    const r = JSON.parse(io.out()) as { kind: string; n: number; answers: { accuracy: number; formatRate: number; components: Record<string, number> } };
    assert.equal(r.kind, 'answers');
    assert.equal(r.n, 3);
    // A random 2-layer model cannot write "Answer: 42" in 6 tokens by chance in any realistic run; the fractions are k/3.
    for (const v of [r.answers.accuracy, r.answers.formatRate]) assert.ok([0, 1 / 3, 2 / 3, 1].some((k) => Math.abs(v - k) < 1e-12), String(v));
    assert.deepEqual(Object.keys(r.answers.components), ['correct', 'format']);
  });

  test('preference pairs: accuracy is the share of pairs with the higher chosen log-prob (checked against --per-token and by hand)', async () => {
    const io = captureIO();
    assert.equal(await evalCommand.run(['--model', modelDir, '--data', pairs, '--json'], io), 0, io.err());
    const summed = JSON.parse(io.out()) as { n: number; preferences: { accuracy: number; rankedBy: string; meanMargin: number } };
    assert.equal(summed.n, 2);
    assert.equal(summed.preferences.rankedBy, 'summed log-prob');
    assert.ok([0, 0.5, 1].includes(summed.preferences.accuracy));
    // Pair 2's rejected reply is 8 characters longer: with ~100 roughly uniform choices per character its summed
    // log-prob is lower by about 8 ln 100 ~ 37 nats, far beyond what a random init's preferences can undo.
    assert.ok(summed.preferences.accuracy >= 0.5);
    const io2 = captureIO();
    assert.equal(await evalCommand.run(['--model', modelDir, '--data', pairs, '--per-token'], io2), 0, io2.err());
    assert.match(io2.out(), /2 preference pairs from .*pairs\.jsonl/);
    assert.match(io2.out(), /preference accuracy \d+\.\d% \(ranked by log-prob per token/);
  });
});

describe('posttrain eval: errors', () => {
  test('usage errors name the problem', async () => {
    const run = (argv: string[]) => evalCommand.run(argv, captureIO());
    await assert.rejects(run(['--data', prompts]), (e: Error) => e instanceof UsageError && /missing --model/.test(e.message));
    await assert.rejects(run(['--model', modelDir]), (e: Error) => e instanceof UsageError && /missing --data/.test(e.message));
    await assert.rejects(run(['--model', join(dir, 'nope'), '--data', prompts]), /--model .*nope: no such directory/);
    mkdirSync(join(dir, 'empty-model'), { recursive: true });
    await assert.rejects(run(['--model', join(dir, 'empty-model'), '--data', prompts]), /not a model directory \(no config\.json\)/);
    await assert.rejects(run(['--model', modelDir, '--data', join(dir, 'missing.jsonl')]), /missing\.jsonl: no such file/);
    const sft = jsonl('sft.jsonl', [{ messages: [...user('a'), { role: 'assistant', content: 'b' }] }]);
    await assert.rejects(run(['--model', modelDir, '--data', sft]), /sft\.jsonl:1: a language-modeling record; expected prompt-only records with answers/);
    const noAnswer = jsonl('no-answer.jsonl', [{ prompt: user('q'), answer: '1' }, { prompt: user('r') }]);
    await assert.rejects(run(['--model', modelDir, '--data', noAnswer]), /no-answer\.jsonl:2: field "answer": missing or empty/);
    await assert.rejects(run(['--model', modelDir, '--data', pairs, '--rules', join(dir, 'rules.yaml')]), /--rules applies to prompt-only data/);
    const rmDir = join(dir, 'rm');
    const tok = createBuiltinTokenizer();
    const f = buildBuiltinTokenizerFiles();
    await initModelDir(rmDir, { vocabSize: tok.vocabSize, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, task: 'sequence-classification', padTokenId: tok.padTokenId }, { seed: 1, assets: { 'tokenizer.json': JSON.stringify(f.tokenizerJson), 'tokenizer_config.json': JSON.stringify(f.tokenizerConfig) } });
    await assert.rejects(run(['--model', rmDir, '--data', pairs]), /rm: a sequence-classification \(reward\) model without an LM head/);
    await assert.rejects(run(['--model', modelDir, '--data', prompts, '--n', '0']), /--n: got "0", expected a value >= 1/);
  });
});
