/**
 * Batching benchmark of the policy sampler (a script, not a test): tokens/s
 * with 1 request in flight versus 8 concurrent requests, through gRPC against
 * a sampler process, on tiny models written here.
 *
 *   npx tsx tests/serving/bench-batching.ts [--requests 32] [--tokens 48] [--sizes 32x2,256x4]
 *
 * Each size is hidden x layers (vocabulary of the built-in tokenizer, 4 heads,
 * 2 kv heads). For each concurrency, `--requests` requests of one prompt and
 * `--tokens` new tokens run through `c` client loops; tokens/s counts the
 * tokens actually generated (an EOS can end a completion early).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { countParameters } from '@posttrain/model';
import { GenerateRequest, PolicySamplerService } from '@posttrain/proto';
import { createClient, parseConfig, defineConfig } from '@posttrain/rpc';
import { startLocalServices } from '@posttrain/cli';
import { generateAll, tinyConfig, writeTinyModel } from './serving-support';

const options = defineConfig({
  requests: { kind: 'int', flag: 'requests', description: 'requests per measurement', default: 32, min: 1 },
  tokens: { kind: 'int', flag: 'tokens', description: 'max_new_tokens per request', default: 48, min: 1 },
  sizes: { kind: 'list', flag: 'sizes', description: 'model sizes as hidden x layers', default: ['32x2', '256x4'] },
});

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
      await generateAll(client, request(0)); // warm-up (kernels, caches)
      const results: { concurrency: number; tokensPerSecond: number; seconds: number; tokens: number; meanBatch: number }[] = [];
      for (const concurrency of [1, 8]) {
        let next = 0;
        let tokens = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < o.requests) {
              const k = next++;
              for (const c of await generateAll(client, request(k))) tokens += c.tokenIds.length;
            }
          }),
        );
        const seconds = (performance.now() - t0) / 1000;
        const info = await client.unary('getInfo', {});
        results.push({ concurrency, tokensPerSecond: tokens / seconds, seconds, tokens, meanBatch: info.batch?.meanBatchSize ?? 0 });
      }
      const params = countParameters(config, { lm: true, score: false });
      const backend = (await client.unary('getInfo', {})).model?.backend;
      for (const r of results) {
        process.stdout.write(`model ${size} (${(params / 1e6).toFixed(2)} M params, ${backend}): ${r.concurrency} concurrent: ${r.tokens} tokens in ${r.seconds.toFixed(2)} s = ${r.tokensPerSecond.toFixed(0)} tokens/s\n`);
      }
      process.stdout.write(`model ${size}: speed-up at 8 concurrent = ${(results[1].tokensPerSecond / results[0].tokensPerSecond).toFixed(2)}x; GetInfo mean batch size over the last minute ${results[1].meanBatch.toFixed(2)}\n`);
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
