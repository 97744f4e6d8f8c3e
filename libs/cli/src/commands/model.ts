import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describeKernels, initBackend } from '@posttrain/backend';
import { createModelConfig, generate, initModelDir, loadModel, logProbsJsonlText, modelInfo, parseModelConfig, runModelBench, type ModelConfig, type ModelShape } from '@posttrain/model';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import { buildBuiltinTokenizerFiles, createBuiltinTokenizer, loadTokenizer, type Tokenizer } from '@posttrain/tokenizer';
import { UsageError, type Command } from '../command';
import { requireModelDir } from '../model-dir';

function readStructured(path: string, flag: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`${flag}: cannot read "${path}"`);
  }
  try {
    return path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new UsageError(`${flag}: "${path}" is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
}

const initOptions = defineConfig({
  out: { kind: 'string', flag: 'out', description: 'directory to write (must not exist or be empty)', required: true },
  config: { kind: 'string', flag: 'config', description: 'a Hugging Face config.json (Llama, Qwen2 or Mistral keys); default: the tiny Llama (d_model 256, 4 layers, 4 heads, SwiGLU 688) sized to the tokenizer' },
  seed: { kind: 'int', flag: 'seed', description: 'initialisation seed', default: 0, min: 0 },
  tokenizer: {
    kind: 'string',
    flag: 'tokenizer',
    description: "builtin writes the built-in character tokenizer (ChatML template) beside the weights; none writes no tokenizer; a directory (a Hub model's, with tokenizer.json and tokenizer_config.json) has its tokenizer files copied, and the vocabulary is sized to fit it",
    default: 'builtin',
  },
});

/** Tokenizer files copied by `--tokenizer DIR` (when present; the first two are required). */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja'] as const;

export const modelInitCommand: Command = {
  name: 'model init',
  summary: 'write a randomly initialised model in the Hugging Face layout',
  help: () => `usage: posttrain model init --out DIR [--config config.json] [--tokenizer builtin|none|DIR] [options]\n\nOptions:\n${describeConfig(initOptions)}\n`,
  run: async (argv, io) => {
    const o = parseConfig(initOptions, { argv });
    if (existsSync(o.out) && (!statSync(o.out).isDirectory() || readdirSync(o.out).length > 0)) throw new UsageError(`--out: "${o.out}" exists and is not an empty directory`);
    const assets: Record<string, string> = {};
    let tok: Tokenizer | undefined;
    let tokenizerName = '';
    if (o.tokenizer === 'builtin') {
      const files = buildBuiltinTokenizerFiles();
      assets['tokenizer.json'] = JSON.stringify(files.tokenizerJson);
      assets['tokenizer_config.json'] = JSON.stringify(files.tokenizerConfig, null, 2);
      assets['special_tokens_map.json'] = JSON.stringify(files.specialTokensMap, null, 2);
      tok = createBuiltinTokenizer();
      tokenizerName = 'the built-in tokenizer';
    } else if (o.tokenizer !== 'none') {
      if (!existsSync(o.tokenizer) || !statSync(o.tokenizer).isDirectory()) throw new UsageError(`--tokenizer: "${o.tokenizer}" is not builtin, none or a directory`);
      for (const f of TOKENIZER_FILES.slice(0, 2)) {
        if (!existsSync(join(o.tokenizer, f))) throw new UsageError(`--tokenizer: "${o.tokenizer}" has no ${f}; expected a tokenizer directory as the Hub ships it (tokenizer.json, tokenizer_config.json)`);
      }
      tok = await loadTokenizer(o.tokenizer); // validates the files (special tokens, chat template) before anything is written
      for (const f of TOKENIZER_FILES) if (existsSync(join(o.tokenizer, f))) assets[f] = readFileSync(join(o.tokenizer, f), 'utf8');
      tokenizerName = join(o.tokenizer, 'tokenizer.json');
    }
    let config: ModelConfig;
    if (o.config) {
      config = parseModelConfig(readStructured(o.config, '--config'), o.config);
      if (tok && config.vocabSize < tok.vocabSize) {
        throw new UsageError(`--config: ${o.config} "vocab_size" is ${config.vocabSize} but ${tokenizerName} has ${tok.vocabSize} tokens; expected "vocab_size" >= ${tok.vocabSize} (the embedding may be larger than the tokenizer, never smaller)`);
      }
    } else {
      config = createModelConfig(tok ? { vocabSize: tok.vocabSize, eosTokenId: tok.eosTokenId, padTokenId: tok.padTokenId, bosTokenId: tok.bosTokenId } : {});
    }
    await initBackend();
    const written = await initModelDir(o.out, config, { seed: o.seed, assets });
    const info = await modelInfo(o.out);
    io.stdout.write(`wrote ${o.out}: ${written.modelType}, ${info.parameterCount.toLocaleString('en-US')} parameters, vocab ${written.vocabSize}\n`);
    return 0;
  },
};

const infoOptions = defineConfig({ json: { kind: 'bool', flag: 'json', description: 'print as JSON', default: false } });

export const modelInfoCommand: Command = {
  name: 'model info',
  summary: "print a model directory's config and parameter count",
  help: () => `usage: posttrain model info DIR [--json]\n`,
  run: async (argv, io) => {
    const [dir, ...rest] = argv;
    if (!dir || dir.startsWith('--')) throw new UsageError('missing DIR: posttrain model info DIR');
    const o = parseConfig(infoOptions, { argv: rest });
    requireModelDir(dir, 'DIR');
    const info = await modelInfo(dir);
    if (o.json) io.stdout.write(JSON.stringify(info) + '\n');
    else {
      const c = info.config;
      io.stdout.write(`${dir}\n  type:        ${c.modelType}\n  parameters:  ${info.parameterCount.toLocaleString('en-US')}\n  heads:       ${Object.entries(info.heads).filter(([, v]) => v).map(([k]) => k).join(', ')}\n  weights:     ${info.weightFiles.join(', ')}\n  assets:      ${info.assets.join(', ') || '(none)'}\n  config:      ${JSON.stringify(c)}\n`);
    }
    return 0;
  },
};

const logprobsOptions = defineConfig({
  model: { kind: 'string', flag: 'model', description: 'model directory', required: true },
  input: { kind: 'string', flag: 'input', description: 'JSONL: {"text"}, {"prompt","completion"}, {"input_ids"} or {"prompt_ids","completion_ids"} per line', required: true },
  out: { kind: 'string', flag: 'out', description: 'write JSONL here instead of stdout' },
  temperature: { kind: 'number', flag: 'temperature', description: 'divide logits by this before the log-softmax', default: 1, min: 1e-6 },
  batchSize: { kind: 'int', flag: 'batch-size', description: 'sequences per forward pass', default: 8, min: 1 },
});

export const modelLogprobsCommand: Command = {
  name: 'model logprobs',
  summary: 'per-token log-probs of each input line, as JSON lines',
  help: () => `usage: posttrain model logprobs --model DIR --input F.jsonl [options]\n\nOptions:\n${describeConfig(logprobsOptions)}\n`,
  run: async (argv, io) => {
    const o = parseConfig(logprobsOptions, { argv });
    requireModelDir(o.model, '--model');
    if (!existsSync(o.input)) throw new UsageError(`--input: cannot read "${o.input}": no such file`);
    await initBackend();
    const model = await loadModel(o.model);
    const tok = existsSync(join(o.model, 'tokenizer.json')) ? await loadTokenizer(o.model) : undefined;
    try {
      const text = logProbsJsonlText(model, readFileSync(o.input, 'utf8'), o.input, { temperature: o.temperature, batchSize: o.batchSize, encode: tok ? (t: string) => tok.encode(t) : undefined });
      if (o.out) await writeFile(o.out, text);
      else io.stdout.write(text);
    } finally {
      model.dispose();
    }
    return 0;
  },
};

const generateOptions = defineConfig({
  model: { kind: 'string', flag: 'model', description: 'model directory (with tokenizer.json)', required: true },
  prompt: { kind: 'string', flag: 'prompt', description: 'the prompt text', required: true },
  chat: { kind: 'bool', flag: 'chat', description: "send the prompt as a user message through the model's chat template", default: false },
  n: { kind: 'int', flag: 'n', description: 'samples', default: 1, min: 1, max: 64 },
  maxNewTokens: { kind: 'int', flag: 'max-new-tokens', description: 'tokens to generate', default: 64, min: 1 },
  temperature: { kind: 'number', flag: 'temperature', description: '0 = greedy', min: 0 },
  topK: { kind: 'int', flag: 'top-k', description: '0 = off', min: 0 },
  topP: { kind: 'number', flag: 'top-p', description: '1 = off', min: 1e-6, max: 1 },
  seed: { kind: 'int', flag: 'seed', description: 'sampling seed', default: 0, min: 0 },
  json: { kind: 'bool', flag: 'json', description: 'print tokens and log-probs as JSON lines', default: false },
});

export const modelGenerateCommand: Command = {
  name: 'model generate',
  summary: 'sample text from a model (KV cache)',
  help: () => `usage: posttrain model generate --model DIR --prompt TEXT [options]\n\nOptions:\n${describeConfig(generateOptions)}\n`,
  run: async (argv, io) => {
    const o = parseConfig(generateOptions, { argv });
    requireModelDir(o.model, '--model');
    if (!existsSync(join(o.model, 'tokenizer.json'))) throw new UsageError(`--model: "${o.model}" has no tokenizer.json, so a text prompt cannot be encoded`);
    await initBackend();
    const tok = await loadTokenizer(o.model);
    const ids = o.chat ? tok.encodeChatIds([{ role: 'user', content: o.prompt }], { addGenerationPrompt: true }) : tok.encode(o.prompt);
    const model = await loadModel(o.model);
    try {
      const out = generate(model, Array.from({ length: o.n }, () => ids), { maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed });
      out.forEach((c, i) => {
        const text = tok.decode(c.tokens, { skipSpecialTokens: true });
        if (o.json) io.stdout.write(JSON.stringify({ sample: i, text, tokens: c.tokens, logprobs: c.logProbs, finish_reason: c.finishReason }) + '\n');
        else io.stdout.write(`${o.n > 1 ? `--- sample ${i} (${c.finishReason}, sum log-prob ${c.logProbs.reduce((a, b) => a + b, 0).toFixed(3)})\n` : ''}${text}\n`);
      });
    } finally {
      model.dispose();
    }
    return 0;
  },
};

const benchOptions = defineConfig({
  json: { kind: 'bool', flag: 'json', description: 'print one JSON line', default: false },
  steps: { kind: 'int', flag: 'steps', description: 'timed training steps', default: 5, min: 1 },
  compare: { kind: 'bool', flag: 'compare', description: 'also time the straightforward tfjs formulation and report the speedup', default: false },
  backend: { kind: 'string', flag: 'backend', description: 'tfjs backend (default: POSTTRAIN_BACKEND or automatic)' },
  threads: { kind: 'string', flag: 'threads', description: 'BLAS thread counts to measure with the native kernels, e.g. 1,2 (default: POSTTRAIN_BLAS_THREADS, else 1)' },
  profile: { kind: 'bool', flag: 'profile', description: 'print the top kernels of one training step and one decode (with --compare-native also on plain wasm)', default: false },
  compareNative: { kind: 'bool', flag: 'compare-native', description: 'also time plain wasm (native kernels off) in the same run and report the ratios', default: false },
  model: { kind: 'string', flag: 'model', description: "time a model directory's shape (its config.json; weights randomly initialised) instead of the default Llama shape" },
  batchSize: { kind: 'int', flag: 'batch-size', description: 'training rows per step (default 8)', min: 1 },
  seqLen: { kind: 'int', flag: 'seq-len', description: 'training tokens per row (default 128)', min: 1 },
});

/** The shape of the model in `dir` (its config.json), for timing: everything but the weights and the position limit. */
function shapeOf(dir: string): ModelShape {
  requireModelDir(dir, '--model');
  const path = join(dir, 'config.json');
  const c = parseModelConfig(readStructured(path, '--model'), path);
  if (c.qkvBias || c.oBias || c.qkNorm || c.slidingWindow !== null) throw new Error(`--model: ${path} has attention biases, q/k norms or a sliding window, which the bench does not build; time its plain Llama shape by leaving --model out`);
  return { modelType: c.modelType, vocabSize: c.vocabSize, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize, numLayers: c.numLayers, numHeads: c.numHeads, numKvHeads: c.numKvHeads, tieWordEmbeddings: c.tieWordEmbeddings, ropeTheta: c.ropeTheta, rmsNormEps: c.rmsNormEps };
}

function threadList(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const list = value.split(',').map((x) => Number(x.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--threads: got "${value}", expected positive integers separated by commas, e.g. 1,2`);
  return list;
}

export const modelBenchCommand: Command = {
  name: 'model bench',
  summary: "training and sampling throughput on the default Llama shape (3.3 M parameters) or a model directory's",
  help: () =>
    `usage: posttrain model bench [--json] [options]\n\nOptions:\n${describeConfig(benchOptions)}\n\nThe shipped base model's SFT step (16 rows of about 110 tokens):\n  posttrain model bench --model models/tiny-arith-base --batch-size 16 --seq-len 110\n`,
  run: async (argv, io) => {
    const o = parseConfig(benchOptions, { argv });
    const shape = o.model === undefined ? undefined : shapeOf(o.model);
    const r = await runModelBench({ steps: o.steps, compareStraightforward: o.compare, backend: o.backend, blasThreads: threadList(o.threads), compareNative: o.compareNative, profile: o.profile, shape, batchSize: o.batchSize, seqLen: o.seqLen });
    if (o.json) io.stdout.write(JSON.stringify(r) + '\n');
    else {
      const n = r.backend.native;
      const kernels = describeKernels(n.kernels);
      const path = n.active ? `native ${n.blas}${kernels ? ` (${kernels})` : ''}, ${n.threads ?? 'system'} BLAS thread(s)` : r.backend.name === 'wasm' ? `plain wasm (native kernels: ${n.reason})` : 'no native kernels';
      io.stdout.write(`backend ${r.backend.name} (${r.backend.tfjsBackend} ${r.backend.version}), ${path}; ${r.parameters.toLocaleString('en-US')} parameters\n`);
      io.stdout.write(`train (${r.train.tokensPerStep} tokens a step): ${r.train.tokensPerSecond.toFixed(0)} tokens/s, ${r.train.gflopPerSecond.toFixed(2)} GFLOP/s (median of ${r.train.steps}; ${r.train.flopFormula})\n`);
      io.stdout.write(`decode (KV cache, greedy): ${r.decode.map((d) => `batch ${d.batch} ${d.tokensPerSecond.toFixed(0)} tokens/s`).join(', ')} (${r.decode[0]?.promptLen}-token prompt, ${r.decode[0]?.newTokens} new)\n`);
      for (const t of r.byThreads ?? []) {
        io.stdout.write(`  ${t.threads} BLAS thread(s): train ${t.train.tokensPerSecond.toFixed(0)} tokens/s; decode ${t.decode.map((d) => `batch ${d.batch} ${d.tokensPerSecond.toFixed(0)}`).join(', ')}\n`);
      }
      if (r.plainWasm) {
        io.stdout.write(`plain wasm, same run: train ${r.plainWasm.train.tokensPerSecond.toFixed(0)} tokens/s (native ${r.plainWasm.train.speedup.toFixed(2)}x); decode ${r.plainWasm.decode.map((d) => `batch ${d.batch} ${d.tokensPerSecond.toFixed(0)} (${d.speedup.toFixed(2)}x)`).join(', ')}\n`);
      }
      if (r.train.straightforward) io.stdout.write(`straightforward tfjs: ${r.train.straightforward.gflopPerSecond.toFixed(2)} GFLOP/s -> speedup ${r.train.straightforward.speedup.toFixed(1)}x\n`);
      const shares = (label: string, list: { kernel: string; calls: number; share: number }[]) =>
        io.stdout.write(`${label}: ${list.map((k) => `${k.kernel} ${(k.share * 100).toFixed(0)}% (${k.calls})`).join(', ')}\n`);
      if (r.profile) {
        shares('profile, training step', r.profile.train);
        shares('profile, decode batch 8', r.profile.decode);
        if (r.profile.plainWasm) {
          shares('profile, training step, plain wasm', r.profile.plainWasm.train);
          shares('profile, decode batch 8, plain wasm', r.profile.plainWasm.decode);
        }
      }
      io.stdout.write(`sampling: ${r.sampling.withCache.tokensPerSecond.toFixed(0)} tokens/s with KV cache, ${r.sampling.withoutCache.tokensPerSecond.toFixed(0)} without\n`);
    }
    return 0;
  },
};

export const MODEL_COMMANDS = [modelInitCommand, modelInfoCommand, modelLogprobsCommand, modelGenerateCommand, modelBenchCommand];
