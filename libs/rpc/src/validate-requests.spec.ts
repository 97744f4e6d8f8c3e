import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GenerateRequest, LogProbsRequest } from '@posttrain/proto';
import { RpcError } from './errors';
import { validateGenerateRequest, validateLogProbsRequest } from './validate-requests';

const invalid = (re: RegExp) => (e: unknown) => e instanceof RpcError && re.test(e.message);

test('a prompt over the byte limit is refused before tokenizing, as text or as chat messages', () => {
  const big = 'x'.repeat((1 << 20) + 1);
  assert.throws(() => validateGenerateRequest(GenerateRequest.fromPartial({ prompts: [{ input: { $case: 'text', value: big } }] })), invalid(/^prompts\[0\]\.text: 1048577 bytes, expected at most 1048576$/));
  const messages = [{ role: 'user', content: big.slice(0, 600_000) }, { role: 'assistant', content: big.slice(0, 600_000) }];
  assert.throws(() => validateGenerateRequest(GenerateRequest.fromPartial({ prompts: [{ input: { $case: 'messages', value: { messages } } }] })), invalid(/^prompts\[0\]\.messages\.messages: 1200000 bytes of content/));
  // Multi-byte characters count as their UTF-8 bytes.
  assert.throws(() => validateGenerateRequest(GenerateRequest.fromPartial({ prompts: [{ input: { $case: 'text', value: 'é'.repeat(600_000) } }] }), { maxPromptBytes: 1 << 20 }), invalid(/1200000 bytes/));
  validateGenerateRequest(GenerateRequest.fromPartial({ prompts: [{ input: { $case: 'text', value: 'x'.repeat(1 << 20) } }] }));
});

test('a positive temperature so small that logits / T overflow is refused; 0 stays greedy for Generate', () => {
  const gen = (temperature: number) => GenerateRequest.fromPartial({ prompts: [{ input: { $case: 'text', value: 'hi' } }], sampling: { temperature } });
  assert.throws(() => validateGenerateRequest(gen(1e-45)), invalid(/^sampling\.temperature: got 1e-45, expected 0 \(greedy\) or >= 0\.001$/));
  validateGenerateRequest(gen(0));
  validateGenerateRequest(gen(0.001));
  const lp = (temperature: number) => LogProbsRequest.fromPartial({ sequences: [{ promptIds: [1], completionIds: [2] }], temperature });
  assert.throws(() => validateLogProbsRequest(lp(1e-45)), invalid(/^temperature: got 1e-45, expected >= 0\.001$/));
  validateLogProbsRequest(lp(0.5));
});
