/**
 * Batching benchmark of the policy sampler (a script, not a test): tokens/s
 * with 1 request in flight versus 8 concurrent requests, through gRPC against
 * a sampler process, on tiny models written here.
 *
 *   npx tsx tests/serving/bench-batching.ts [--requests 32] [--tokens 48] [--sizes 32x2,256x4] [--repeats 3]
 *
 * Each size is hidden x layers (vocabulary of the built-in tokenizer, 4 heads,
 * 2 kv heads). For each concurrency, `--requests` requests of one prompt and
 * `--tokens` new tokens run through `c` client loops; tokens/s counts the
 * tokens actually generated (an EOS can end a completion early). A warm-up
 * round at both concurrencies runs first (JIT, kernels, cache shapes), then
 * `--repeats` rounds alternate 1 and 8 concurrent so that load from other
 * processes hits both alike; the best and the median of each are reported,
 * and the speed-up of the medians and of the bests.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { countParameters } from '@posttrain/model';
import { GenerateRequest, PolicySamplerService } from '@posttrain/proto';
import { parseConfig, defineConfig } from '@posttrain/flags';
import { createClient } from '@posttrain/rpc';
import { startLocalServices } from '@posttrain/cli';
import { generateAll, tinyConfig, writeTinyModel } from './serving-support';

const options = defineConfig({
  requests: { kind: 'int', flag: 'requests', description: 'requests per measurement', default: 32, min: 1 },
  tokens: { kind: 'int', flag: 'tokens', description: 'max_new_tokens per request', default: 48, min: 1 },
  sizes: { kind: 'list', flag: 'sizes', description: 'model sizes as hidden x layers', default: ['32x2', '256x4'] },
  repeats: { kind: 'int', flag: 'repeats', description: 'measurement rounds (1 then 8 concurrent each)', default: 3, min: 1 },
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const o = parseConfig(options, { argv: process.argv.slice(2) });
  await tf.setBackend('cpu');
  for (const size of o.sizes) {
    const m = /^(\d+)x(\d+)$/.exec(size);
    if (!m) throw new Error(`--sizes: "${size}" is not HIDDENxLAYERS`);
    const config = tinyConfig('causal-lm', { hiddenSize: Number(m[1]), numLayers: Number(m[2]), maxPositionEmbeddings: 256 });
    const dir = await writeTinyModel(1, config);
    const group = await startLocalServices([{ name: 'policy-sampler', label: 'sampler', args: ['--model', dir, '--max-new-tokens', String(o.tokens)] }], { host: '127.0.0.1', startupTimeoutMs: 120_000 });
    const client = createClient(PolicySamplerService, group.services[0].address, { maxAttempts: 1 });
    try {
      const request = (k: number) => GenerateRequest.fromPartial({ prompts: [{ input: { $case: 'text', value: `${k % 10}+${(k * 7) % 10}=` } }], sampling: { maxNewTokens: o.tokens, seed: k } });
      const measure = async (concurrency: number, requests: number) => {
        let next = 0;
        let tokens = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < requests) {
              const k = next++;
              for (const c of await generateAll(client, request(k))) tokens += c.tokenIds.length;
            }
          }),
        );
        const seconds = (performance.now() - t0) / 1000;
        return { tokensPerSecond: tokens / seconds, seconds, tokens };
      };
      await measure(8, 16); // warm-up (JIT, kernels, batched cache shapes)
      await measure(1, 4);
      const rates = new Map<number, number[]>([[1, []], [8, []]]);
      const params = countParameters(config, { lm: true, score: false });
      const backend = (await client.unary('getInfo', {})).model?.backend;
      for (let round = 1; round <= o.repeats; round++) {
        for (const concurrency of [1, 8]) {
          const r = await measure(concurrency, o.requests);
          rates.get(concurrency)!.push(r.tokensPerSecond);
          process.stdout.write(`model ${size} (${(params / 1e6).toFixed(2)} M params, ${backend}) round ${round}: ${concurrency} concurrent: ${r.tokens} tokens in ${r.seconds.toFixed(2)} s = ${r.tokensPerSecond.toFixed(0)} tokens/s\n`);
        }
      }
      const info = await client.unary('getInfo', {});
      const one = rates.get(1)!;
      const eight = rates.get(8)!;
      process.stdout.write(`model ${size}: 1 concurrent: best ${Math.max(...one).toFixed(0)}, median ${median(one).toFixed(0)} tokens/s; 8 concurrent: best ${Math.max(...eight).toFixed(0)}, median ${median(eight).toFixed(0)} tokens/s\n`);
      process.stdout.write(`model ${size}: speed-up at 8 concurrent = ${(median(eight) / median(one)).toFixed(2)}x (medians), ${(Math.max(...eight) / Math.max(...one)).toFixed(2)}x (bests); GetInfo over the last minute (both concurrencies): mean batch size ${(info.batch?.meanBatchSize ?? 0).toFixed(2)}\n`);
    } finally {
      client.close();
      await group.stop();
    }
  }
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
