// Load on the sampler and reward services: a fixed number of concurrent callers, each issuing its next call as soon as
// the last one settles, for a fixed time. OK and RESOURCE_EXHAUSTED (the queue bound) are answers; anything else, or a
// Generate stream that ends OK with fewer completions than asked for, is a failure.
import { PolicySamplerService, RewardScorerService } from '@posttrain/proto';
import { HAS_DIGIT } from '@posttrain/rl';
import { createClient } from '@posttrain/rpc';
import { count, outcome, quantile, rows } from './tally';

const ACCEPTABLE = ['OK', 'RESOURCE_EXHAUSTED'];

async function underLoad(scenario: string, concurrency: number, seconds: number, call: (i: number) => Promise<void>): Promise<void> {
  const until = Date.now() + seconds * 1000;
  const codes = new Map<string, number>();
  const latencies: number[] = [];
  let calls = 0;
  const worker = async (w: number) => {
    while (Date.now() < until) {
      const began = performance.now();
      const observed = await outcome(call(w * 100_000 + calls++));
      if (observed === 'OK') latencies.push(performance.now() - began);
      codes.set(observed, (codes.get(observed) ?? 0) + 1);
    }
  };
  const began = Date.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const wall = (Date.now() - began) / 1000;
  for (const [c, n] of codes) count(c, n);
  const bad = [...codes].filter(([c]) => !ACCEPTABLE.includes(c)).reduce((n, [, k]) => n + k, 0);
  const statuses = [...codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} x${n}`).join(', ');
  rows.push({
    scenario: `${scenario}: ${concurrency} concurrent for ${seconds} s`,
    expected: 'OK|RESOURCE_EXHAUSTED, none lost',
    observed: `${calls} calls (${(calls / wall).toFixed(0)}/s): ${statuses}; p50 ${quantile(latencies, 0.5).toFixed(0)} ms, p99 ${quantile(latencies, 0.99).toFixed(0)} ms`,
    pass: bad === 0 && calls > 0,
  });
}

/** Concurrent Generate calls to `sampler` (a replica with a small queue bound) and Score calls to `reward`. */
export async function loadServices(sampler: string, reward: string, quick: boolean): Promise<void> {
  const seconds = quick ? 4 : 15;
  const opts = { maxAttempts: 1, deadlineMs: 30_000 };
  const gen = createClient(PolicySamplerService, [sampler], opts);
  const rew = createClient(RewardScorerService, [reward], opts);
  const n = 2;
  await underLoad('load: Generate (n=2, 4 tokens) on a sampler with --max-queue-depth 16', quick ? 128 : 256, seconds, async (i) => {
    let completions = 0;
    for await (const res of gen.serverStream('generate', { prompts: [{ input: { $case: 'tokenIds', value: { ids: [5 + (i % 50), 6] } } }], n, requestId: `load-${i}`, sampling: { maxNewTokens: 4, topK: 0, stop: [], stopTokenIds: [], logprobs: true } })) completions += res.completions.length;
    if (completions !== n) throw new Error(`lost: the stream ended OK with ${completions} of ${n} completions`);
  });
  const item = (i: number) => ({ id: `i${i}`, prompt: 'p', promptMessages: [], completion: `answer ${i}`, completionTokenIds: [] });
  await underLoad('load: Score (8 items, a rule)', quick ? 128 : 256, seconds, async (i) => {
    const res = await rew.unary('score', { items: Array.from({ length: 8 }, (_, k) => item(i + k)), components: [HAS_DIGIT] });
    if (res.scores.length !== 8) throw new Error(`lost: ${res.scores.length} of 8 scores`);
  });
  gen.close();
  rew.close();
}
