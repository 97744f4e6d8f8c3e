import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { initBackend } from '@posttrain/backend';
import { runService, waitForServing, type RunningService } from '@posttrain/rpc';
import { HAS_DIGIT, resolveRlRunConfig, rewardComponentsJson, rlConfig, runRl, writePrompts, writeTinyPolicy } from '@posttrain/rl';
import { policySamplerService } from '@posttrain/svc-policy-sampler';
import { referenceService } from '@posttrain/svc-reference';
import { rewardService } from '@posttrain/svc-reward';
import { createLogger, startTracing } from '@posttrain/telemetry';

// One RL iteration as one trace: the trainer's step span and, below it, the
// client calls it makes and the spans of the sampler, reference and reward
// services that answer them. The services run in this process (their
// runService joins the tracing started here), so one in-memory exporter sees
// every span; across processes the same parentage travels in `traceparent`.
const exporter = new InMemorySpanExporter();
startTracing({ serviceName: 'posttrain-trace-test', spanProcessors: [new SimpleSpanProcessor({ exporter })] });

const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

/** The spans of `root`'s trace below it, by walking parent links. */
function descendants(spans: ReadableSpan[], root: ReadableSpan): ReadableSpan[] {
  const inTrace = spans.filter((s) => s.spanContext().traceId === root.spanContext().traceId);
  const below = new Set([root.spanContext().spanId]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const s of inTrace) {
      const p = parentOf(s);
      if (p && below.has(p) && !below.has(s.spanContext().spanId)) {
        below.add(s.spanContext().spanId);
        grew = true;
      }
    }
  }
  below.delete(root.spanContext().spanId);
  return inTrace.filter((s) => below.has(s.spanContext().spanId));
}

describe('one RL iteration is one trace across the services', { timeout: 600_000 }, () => {
  const running: RunningService[] = [];
  let model: string;
  let prompts: string;
  let outputDir: string;
  const addresses = { sampler: '', reference: '', reward: '' };

  before(async () => {
    await initBackend({ logger: createLogger({ service: 'test', level: 'warn' }) });
    [model, prompts, outputDir] = await Promise.all([writeTinyPolicy(7), writePrompts(8), mkdtemp(join(tmpdir(), 'posttrain-traces-'))]);
    const env = { POSTTRAIN_LOG_LEVEL: 'silent' };
    const common = ['--host', '127.0.0.1', '--port', '0'];
    const sampler = await runService(policySamplerService, [...common, '--model', model, '--max-new-tokens', '8'], env);
    const reference = await runService(referenceService, [...common, '--model', model], env);
    const reward = await runService(rewardService, common, env);
    running.push(sampler, reference, reward);
    addresses.sampler = sampler.started.address;
    addresses.reference = reference.started.address;
    addresses.reward = reward.started.address;
    await Promise.all(Object.values(addresses).map((a) => waitForServing(a, { timeoutMs: 120_000 })));
  });
  after(async () => {
    await Promise.all(running.map((r) => r.server.shutdown('test over')));
    await rm(outputDir, { recursive: true, force: true });
  });

  const services = () => ({ sampler_addresses: [addresses.sampler], reference_address: addresses.reference, reward_address: addresses.reward });

  for (const stage of ['grpo', 'ppo'] as const) {
    test(`${stage}: the step span holds the Generate, ComputeLogProbs, Score and LoadWeights spans of the services`, async () => {
      exporter.reset();
      // A KL coefficient above 0, so the step asks the reference for its log-probs.
      const section =
        stage === 'grpo'
          ? { services: services(), reward_components: rewardComponentsJson(HAS_DIGIT), prompts_per_step: 2, num_generations: 2, mini_batch_size: 4, max_completion_length: 4, beta: 0.04 }
          : { services: services(), reward_components: rewardComponentsJson(HAS_DIGIT), prompts_per_step: 2, num_generations: 1, mini_batch_size: 2, num_ppo_epochs: 1, max_completion_length: 4, kl_coef: 0.05 };
      const config = rlConfig({ runId: `${stage}-traced`, outputDir, model, prompts, maxSteps: 1, learningRate: 1e-3 }, stage, section);
      const result = await runRl(resolveRlRunConfig(config), {});
      assert.equal(result.status, 'completed');

      const spans = exporter.getFinishedSpans();
      const steps = spans.filter((s) => s.name === `${stage}.step`);
      assert.equal(steps.length, 1, spans.map((s) => s.name).join(', '));
      const step = steps[0];
      assert.equal(step.attributes['posttrain.step'], 1);
      assert.equal(step.attributes['posttrain.run_id'], `${stage}-traced`);
      const below = descendants(spans, step);
      const names = new Set(below.map((s) => s.name));
      // The servers' spans (libs/rpc names them after the full method), each a child of the step's client call.
      for (const method of ['posttrain.v1.PolicySampler/Generate', 'posttrain.v1.ReferenceModel/ComputeLogProbs', 'posttrain.v1.RewardScorer/Score', 'posttrain.v1.PolicySampler/LoadWeights']) {
        assert.ok([...names].some((n) => n.includes(method)), `no ${method} span below ${stage}.step; below it: ${[...names].join(', ')}`);
      }
      // Each service reported into the step's trace as a server span.
      const servers = below.filter((s) => s.kind === 1 /* SpanKind.SERVER */).map((s) => s.name);
      assert.ok(servers.length >= 3, `server spans below the step: ${servers.join(', ')}`);
    });
  }
});
