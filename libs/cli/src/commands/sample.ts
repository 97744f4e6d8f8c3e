import { initBackend } from '@posttrain/backend';
import { FinishReason, GenerateRequest, PolicySamplerService } from '@posttrain/proto';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import { createClient } from '@posttrain/rpc';
import { GenerationEngine, loadServedModel, ServingError, tokenizePrompt } from '@posttrain/serving';
import { UsageError, type Command } from '../command';

const options = defineConfig({
  model: { kind: 'string', flag: 'model', description: 'model directory to sample from in this process' },
  addr: { kind: 'string', flag: 'addr', description: 'HOST:PORT of a running policy-sampler to sample from instead' },
  prompt: { kind: 'string', flag: 'prompt', description: 'the prompt text (required)' },
  chat: { kind: 'bool', flag: 'chat', description: "send the prompt as one user message through the model's chat template", default: false },
  n: { kind: 'int', flag: 'n', description: 'completions to sample', default: 1, min: 1, max: 256 },
  temperature: { kind: 'number', flag: 'temperature', description: 'softmax temperature; 0 = greedy', default: 1, min: 0 },
  topK: { kind: 'int', flag: 'top-k', description: 'keep the k most likely tokens; 0 = off', default: 0, min: 0 },
  topP: { kind: 'number', flag: 'top-p', description: 'nucleus sampling mass in (0, 1]; 1 = off', default: 1, min: Number.MIN_VALUE, max: 1 },
  maxNewTokens: { kind: 'int', flag: 'max-new-tokens', description: 'tokens to generate at most', default: 64, min: 1 },
  seed: { kind: 'int', flag: 'seed', description: 'seed of the random stream (same seed, same completions); default: a fresh one', min: 0 },
  stop: { kind: 'list', flag: 'stop', description: 'comma-separated stop strings' },
  json: { kind: 'bool', flag: 'json', description: 'print one JSON object per completion', default: false },
});

type SampleOptions = ReturnType<typeof parseConfig<typeof options>>;

/** A completion as printed, whether sampled here or by a running sampler. */
interface PrintedCompletion {
  sampleIndex: number;
  text: string;
  tokenIds: number[];
  logprobs: number[];
  /** stop, length, abort or unspecified. */
  finish: string;
  stopString: string;
  weightsVersion: number;
}

const FINISH: Record<number, string> = { [FinishReason.STOP]: 'stop', [FinishReason.LENGTH]: 'length', [FinishReason.ABORT]: 'abort' };

function format(completion: PrintedCompletion, json: boolean): string {
  const total = completion.logprobs.reduce((s, x) => s + x, 0);
  if (json) {
    return JSON.stringify({ sample: completion.sampleIndex, text: completion.text, token_ids: completion.tokenIds, logprobs: completion.logprobs, sum_logprob: total, finish_reason: completion.finish, stop_string: completion.stopString || undefined, weights_version: completion.weightsVersion }) + '\n';
  }
  return [
    `--- sample ${completion.sampleIndex}: ${completion.tokenIds.length} tokens, finish ${completion.finish}${completion.stopString ? ` (stop ${JSON.stringify(completion.stopString)})` : ''}, sum log-prob ${total.toFixed(4)}, weights version ${completion.weightsVersion}`,
    completion.text,
    `log-probs: ${completion.logprobs.map((x) => x.toFixed(4)).join(' ')}`,
    '',
  ].join('\n');
}

/** The sampling settings of the options, common to both paths (stop strings aside: each path names them its own way). */
function samplingOf(flags: SampleOptions) {
  return { temperature: flags.temperature, topK: flags.topK, topP: flags.topP, maxNewTokens: flags.maxNewTokens, seed: flags.seed, logprobs: true };
}

/** Completions from a model loaded here. */
async function sampleLocally(dir: string, flags: SampleOptions & { prompt: string }): Promise<PrintedCompletion[]> {
  await initBackend({ logger: { info: () => undefined } });
  let served;
  try {
    served = await loadServedModel(dir);
  } catch (e) {
    throw new UsageError(`--model ${dir}: ${(e as Error).message}`);
  }
  try {
    const n = flags.n;
    const engine = new GenerationEngine(served, { maxBatchSequences: Math.min(n, 64), maxBatchTokens: Number.MAX_SAFE_INTEGER, maxQueueDepth: 1, maxNewTokens: flags.maxNewTokens, maxRequestSequences: n });
    const out: PrintedCompletion[] = [];
    try {
      const prompt = tokenizePrompt(served, flags.chat ? { messages: [{ role: 'user', content: flags.prompt }] } : { text: flags.prompt }, 'prompts[0]');
      const request = { prompts: [prompt], samplesPerPrompt: n, sampling: { ...samplingOf(flags), stopStrings: flags.stop ?? [] } };
      for await (const done of engine.submit(request)) out.push(...done.map((c) => ({ ...c, finish: c.finishReason })));
    } catch (e) {
      if (e instanceof ServingError && e.kind === 'invalid-argument') throw new UsageError(e.message);
      throw e;
    } finally {
      engine.close();
    }
    return out;
  } finally {
    served.model.dispose();
  }
}

/** Completions from a running policy-sampler. */
async function sampleRemotely(addr: string, flags: SampleOptions & { prompt: string }): Promise<PrintedCompletion[]> {
  const request = GenerateRequest.fromPartial({
    prompts: [flags.chat ? { input: { $case: 'messages', value: { messages: [{ role: 'user', content: flags.prompt }] } } } : { input: { $case: 'text', value: flags.prompt } }],
    n: flags.n,
    sampling: { ...samplingOf(flags), stop: flags.stop ?? [] },
    requestId: 'posttrain-sample',
  });
  const client = createClient(PolicySamplerService, addr);
  try {
    const out: PrintedCompletion[] = [];
    for await (const res of client.serverStream('generate', request)) out.push(...res.completions.map((c) => ({ ...c, finish: FINISH[c.finishReason] ?? 'unspecified' })));
    return out;
  } finally {
    client.close();
  }
}

/** `posttrain sample`: completions of one prompt with their per-token log-probs, in-process or from a running sampler. */
export const sampleCommand: Command = {
  name: 'sample',
  summary: 'sample completions of a prompt with their log-probs (in-process with --model, or from a sampler with --addr)',
  help: () =>
    `usage: posttrain sample (--model DIR | --addr HOST:PORT) --prompt TEXT [options]\n\nSamples --n completions of the prompt and prints each with its finish reason, its text and the\nlog-prob of every sampled token (under softmax(logits / temperature), before top-k/top-p).\nWith --model the model runs in this process; with --addr a running policy-sampler does the work.\n\nOptions:\n${describeConfig(options)}\n`,
  run: async (argv, io) => {
    const flags = parseConfig(options, { argv });
    if (!flags.model === !flags.addr) throw new UsageError('give exactly one of --model DIR (sample here) or --addr HOST:PORT (a running policy-sampler)');
    if (flags.prompt === undefined || flags.prompt === '') throw new UsageError('missing --prompt TEXT');
    if (flags.topP <= 0) throw new UsageError(`--top-p: got ${flags.topP}, expected a value in (0, 1]`);
    const withPrompt = { ...flags, prompt: flags.prompt };
    const completions = flags.model ? await sampleLocally(flags.model, withPrompt) : await sampleRemotely(flags.addr!, withPrompt);
    completions.sort((a, b) => a.sampleIndex - b.sampleIndex);
    for (const c of completions) io.stdout.write(format(c, flags.json));
    return 0;
  },
};
