import { initBackend } from '@posttrain/backend';
import { FinishReason, GenerateRequest, PolicySamplerService, type Completion } from '@posttrain/proto';
import { createClient, defineConfig, describeConfig, parseConfig } from '@posttrain/rpc';
import { GenerationEngine, loadServedModel, ServingError } from '@posttrain/serving';
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

const FINISH: Record<number, string> = { [FinishReason.STOP]: 'stop', [FinishReason.LENGTH]: 'length', [FinishReason.ABORT]: 'abort' };

function format(c: Completion, json: boolean): string {
  const total = c.logprobs.reduce((s, x) => s + x, 0);
  if (json) {
    return JSON.stringify({ sample: c.sampleIndex, text: c.text, token_ids: c.tokenIds, logprobs: c.logprobs, sum_logprob: total, finish_reason: FINISH[c.finishReason] ?? 'unspecified', stop_string: c.stopString || undefined, weights_version: c.weightsVersion }) + '\n';
  }
  return [
    `--- sample ${c.sampleIndex}: ${c.tokenIds.length} tokens, finish ${FINISH[c.finishReason] ?? 'unspecified'}${c.stopString ? ` (stop ${JSON.stringify(c.stopString)})` : ''}, sum log-prob ${total.toFixed(4)}, weights version ${c.weightsVersion}`,
    c.text,
    `log-probs: ${c.logprobs.map((x) => x.toFixed(4)).join(' ')}`,
    '',
  ].join('\n');
}

/** Completions in sample order, from a model loaded here. */
async function sampleLocally(dir: string, request: GenerateRequest, maxNewTokens: number): Promise<Completion[]> {
  await initBackend({ logger: { info: () => undefined } });
  let served;
  try {
    served = await loadServedModel(dir);
  } catch (e) {
    throw new UsageError(`--model ${dir}: ${(e as Error).message}`);
  }
  try {
    const n = request.n;
    const engine = new GenerationEngine(served, { maxBatchSequences: Math.min(n, 64), maxBatchTokens: Number.MAX_SAFE_INTEGER, maxQueueDepth: 1, maxNewTokens, maxRequestSequences: n });
    const out: Completion[] = [];
    try {
      for await (const done of engine.submit(request)) out.push(...done);
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

async function sampleRemotely(addr: string, request: GenerateRequest): Promise<Completion[]> {
  const client = createClient(PolicySamplerService, addr);
  try {
    const out: Completion[] = [];
    for await (const res of client.serverStream('generate', request)) out.push(...res.completions);
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
    const o = parseConfig(options, { argv });
    if (!o.model === !o.addr) throw new UsageError('give exactly one of --model DIR (sample here) or --addr HOST:PORT (a running policy-sampler)');
    if (o.prompt === undefined || o.prompt === '') throw new UsageError('missing --prompt TEXT');
    if (o.topP <= 0) throw new UsageError(`--top-p: got ${o.topP}, expected a value in (0, 1]`);
    const request = GenerateRequest.fromPartial({
      prompts: [o.chat ? { input: { $case: 'messages', value: { messages: [{ role: 'user', content: o.prompt }] } } } : { input: { $case: 'text', value: o.prompt } }],
      n: o.n,
      sampling: { temperature: o.temperature, topK: o.topK, topP: o.topP, maxNewTokens: o.maxNewTokens, seed: o.seed, stop: o.stop ?? [], logprobs: true },
      requestId: 'posttrain-sample',
    });
    const completions = o.model ? await sampleLocally(o.model, request, o.maxNewTokens) : await sampleRemotely(o.addr!, request);
    completions.sort((a, b) => a.sampleIndex - b.sampleIndex);
    for (const c of completions) io.stdout.write(format(c, o.json));
    return 0;
  },
};
