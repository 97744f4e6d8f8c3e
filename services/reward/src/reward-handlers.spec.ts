import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceError } from '@grpc/grpc-js';
import { ExtractionMode, RewardScorerService, type ScoreRequest } from '@posttrain/proto';
import { createClient, PosttrainServer, status } from '@posttrain/rpc';
import { createLogger } from '@posttrain/telemetry';
import { createRewardHandlers, type RewardState } from './reward-handlers';

type RewardClient = ReturnType<typeof createClient<typeof RewardScorerService>>;

/** The handlers behind a real gRPC server on loopback, and a client without retries. */
async function startScorer(state: RewardState): Promise<{ client: RewardClient; stop: () => Promise<void> }> {
  const server = new PosttrainServer({ name: 'reward', host: '127.0.0.1', port: 0, shutdownGraceMs: 1000, log: createLogger({ service: 'reward', level: 'silent' }) });
  server.add('posttrain.v1.RewardScorer', RewardScorerService, createRewardHandlers(state));
  const { address } = await server.start();
  server.setServing(true);
  const client = createClient(RewardScorerService, [address], { maxAttempts: 1 });
  return { client, stop: async () => (client.close(), await server.shutdown()) };
}

describe('RewardScorer over gRPC', () => {
  let client: RewardClient;
  let stop: () => Promise<void>;
  before(async () => ({ client, stop } = await startScorer({ replicaId: 'test', maxBatchItems: 3 })));
  after(() => stop());

  const item = (completion: string, groundTruth?: string) => ({ id: completion, prompt: 'What is 12+7?', promptMessages: [], completion, groundTruth, completionTokenIds: [] });
  const request = (items: ScoreRequest['items']): ScoreRequest => ({
    items,
    components: [
      { name: 'correct', weight: 1, rule: { $case: 'numericMatch', value: { extraction: { mode: ExtractionMode.AFTER_MARKER, pattern: 'Answer:' }, absTolerance: 0, relTolerance: 0 } } },
      { name: 'format', weight: 0.5, rule: { $case: 'regex', value: { pattern: 'Answer: -?\\d+$', flags: '', fullMatch: false, negate: false } } },
    ],
  });

  test('a weighted mix of rules, with every component reported', async () => {
    const res = await client.unary('score', request([item('12+7=19\nAnswer: 19', '19'), item('12+7=18\nAnswer: 18', '19'), item('nineteen', '19')]));
    // Hand-computed: correct and formatted = 1*1 + 0.5*1; formatted but wrong = 0.5; neither = 0.
    assert.deepEqual(
      res.scores.map((s) => [s.id, s.reward, s.components.map((c) => [c.name, c.value, c.weighted])]),
      [
        ['12+7=19\nAnswer: 19', 1.5, [['correct', 1, 1], ['format', 1, 0.5]]],
        ['12+7=18\nAnswer: 18', 0.5, [['correct', 0, 0], ['format', 1, 0.5]]],
        ['nineteen', 0, [['correct', 0, 0], ['format', 0, 0]]],
      ],
    );
  });

  test('bad input is INVALID_ARGUMENT naming the field', async () => {
    const bad = request([item('Answer: 1', '1')]);
    bad.components[1] = { name: 'format', weight: 1, rule: { $case: 'regex', value: { pattern: '(unclosed', flags: '', fullMatch: false, negate: false } } };
    await assert.rejects(client.unary('score', bad), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /^components\[1\]\.regex\.pattern: /.test(e.details));
    await assert.rejects(client.unary('score', request([item('Answer: 1')])), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /^items\[0\]\.ground_truth/.test(e.details));
    await assert.rejects(client.unary('score', request([item('a', '1'), item('b', '1'), item('c', '1'), item('d', '1')])), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /^items: got 4 items, expected at most 3/.test(e.details));
    await assert.rejects(client.unary('score', { items: [], components: [] }), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /^items: empty/.test(e.details));
  });

  test('a reward-model component without a reward model is FAILED_PRECONDITION', async () => {
    const req = request([item('Answer: 1', '1')]);
    req.components.push({ name: 'rm', weight: 1, rule: { $case: 'rewardModel', value: { expectedModelId: '', shift: 0, scale: 1 } } });
    await assert.rejects(client.unary('score', req), (e: ServiceError) => e.code === status.FAILED_PRECONDITION && /components\[2\]\.reward_model/.test(e.details));
  });

  test('GetInfo lists the rules this replica can score', async () => {
    const info = await client.unary('getInfo', {});
    assert.deepEqual(info.supportedRules, ['exact_match', 'numeric_match', 'regex', 'format', 'length_penalty']);
  });
});

describe('RewardScorer request limits over gRPC', () => {
  let client: RewardClient;
  let stop: () => Promise<void>;
  before(async () => ({ client, stop } = await startScorer({ replicaId: 'test', maxBatchItems: 8, scoreTimeBudgetMs: 200, regexTimeLimitMs: 5_000, limits: { maxComponents: 4 } })));
  after(() => stop());
  const regex = (name: string, pattern: string) => ({ name, weight: 1, rule: { $case: 'regex' as const, value: { pattern, flags: '', fullMatch: false, negate: false } } });
  const items = [{ id: 'x', prompt: 'p', promptMessages: [], completion: `${'a'.repeat(28)}b`, completionTokenIds: [] }];

  test('a 50 KB pattern is INVALID_ARGUMENT naming the field and its size, and the details do not echo it', async () => {
    const pattern = `(${'ab|'.repeat(17_000)}c)`;
    await assert.rejects(client.unary('score', { items, components: [regex('long', pattern)] }), (e: ServiceError) => {
      assert.equal(e.code, status.INVALID_ARGUMENT);
      assert.equal(e.details, `components[0].regex.pattern: got a pattern of ${pattern.length} characters, expected at most 1000`);
      return true;
    });
  });

  test('more components than --max-components, and nested repetition, are INVALID_ARGUMENT', async () => {
    await assert.rejects(client.unary('score', { items, components: ['a', 'b', 'c', 'd', 'e'].map((n) => regex(n, 'a')) }), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && e.details === 'components: got 5 components, expected at most 4');
    await assert.rejects(client.unary('score', { items, components: [regex('evil', '^(a+)+$')] }), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /^components\[0\]\.regex\.pattern: repetition operators nested 2 deep/.test(e.details));
  });

  test("a request whose regular expressions run past the total budget is RESOURCE_EXHAUSTED, and the service answers the next one at once", async () => {
    const began = Date.now();
    await assert.rejects(client.unary('score', { items, components: [regex('ok', 'a'), regex('slow', '^(a|a)*$')] }), (e: ServiceError) => e.code === status.RESOURCE_EXHAUSTED && /200 ms budget in total \(stopped at components\[1\]\.regex\.pattern\)/.test(e.details));
    assert.ok(Date.now() - began < 3_000, `answered after ${Date.now() - began} ms`);
    const res = await client.unary('score', { items, components: [regex('ok', 'a')] });
    assert.equal(res.scores[0].reward, 1);
  });
});
