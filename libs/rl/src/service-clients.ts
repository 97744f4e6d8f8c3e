/**
 * What an RL step needs from the reference and reward services, as two small
 * interfaces, and the one gRPC adapter of each. ppo.ts and grpo.ts see only
 * the interfaces; protos stay in this file.
 */
import type { ChatMessage } from '@posttrain/data';
import type { RewardComponent, ScoreItem } from '@posttrain/proto';
import { DType, ReferenceModelService, RewardScorerService, decodeTensorAs } from '@posttrain/proto';
import { createClient } from '@posttrain/rpc';
import type { ReferenceLogProbsFn } from '@posttrain/training';

/** A completion and the prompt it continues, as token ids. */
export interface CompletionTokens {
  promptIds: number[];
  completionIds: number[];
}

/** Log-probs of completions under the frozen reference model (the pi_ref of the KL term). */
export interface ReferenceLogProbs {
  /** One log-prob per completion token, for each sequence, at the given sampling temperature (default 1). */
  completionLogProbs(sequences: readonly CompletionTokens[], temperature?: number): Promise<Float32Array[]>;
  close(): void;
}

/** One completion to score. */
export interface RewardItem {
  /** Names the item in the service's errors. */
  id: string;
  prompt: string | ChatMessage[];
  completion: string;
  completionTokenIds: number[];
  groundTruth: string | null;
}

/** Scores of completions: the total reward of each, and each component's mean over the items. */
export interface RewardScorer {
  score(items: readonly RewardItem[]): Promise<{ rewards: Float32Array; componentMeans: Record<string, number> }>;
  close(): void;
}

export interface ServiceClientOptions {
  /** How long UNAVAILABLE is retried (with backoff) before a call fails (ms); a restarting pod is waited for. */
  retryWindowMs?: number;
  /** Deadline of one call (ms); default the client's 30 s. */
  deadlineMs?: number;
  /** Sequences per ComputeLogProbs call; default 64. */
  chunk?: number;
}

// A restarted service is reconnected to within a second or two, not after grpc-js's default backoff (up to 120 s).
const RECONNECT = { 'grpc.initial_reconnect_backoff_ms': 250, 'grpc.max_reconnect_backoff_ms': 2_000 };

/** ReferenceModel.ComputeLogProbs at `address`, in chunks; each answer is checked against the completion lengths sent. */
export function referenceServiceClient(address: string, options: ServiceClientOptions = {}): ReferenceLogProbs {
  const client = createClient(ReferenceModelService, [address], { serviceLabel: 'reference service', retryWindowMs: options.retryWindowMs, deadlineMs: options.deadlineMs, channelOptions: RECONNECT });
  const chunk = options.chunk ?? 64;
  return {
    async completionLogProbs(sequences, temperature) {
      const out: Float32Array[] = [];
      for (let start = 0; start < sequences.length; start += chunk) {
        const part = sequences.slice(start, start + chunk);
        const response = await client.unary('computeLogProbs', { sequences: part.map((s) => ({ promptIds: s.promptIds, completionIds: s.completionIds })), temperature, returnEntropies: false });
        if (!response.logprobs) throw new Error(`reference service at ${address} returned no logprobs tensor`);
        const tensor = decodeTensorAs(response.logprobs, DType.DTYPE_FLOAT32, 'logprobs');
        const width = tensor.shape[1] ?? 0;
        part.forEach((sequence, i) => {
          const length = response.completionLengths[i];
          if (length !== sequence.completionIds.length) throw new Error(`reference service at ${address}: sequence ${start + i} came back with ${length} log-probs for ${sequence.completionIds.length} completion tokens`);
          out.push(tensor.data.slice(i * width, i * width + length));
        });
      }
      return out;
    },
    close: () => client.close(),
  };
}

/** DPO's reference function (libs/training) over a reference service: sequences split at their prompt lengths. */
export function dpoReferenceLogProbs(reference: ReferenceLogProbs): ReferenceLogProbsFn {
  return async ({ sequences, promptLengths }) => {
    const split = sequences.map((ids, i) => ({ promptIds: ids.slice(0, promptLengths[i]), completionIds: ids.slice(promptLengths[i]) }));
    return (await reference.completionLogProbs(split)).map((row) => Array.from(row));
  };
}

/** RewardScorer.Score at `address` with the run's reward components. */
export function rewardServiceClient(address: string, components: readonly RewardComponent[], options: ServiceClientOptions = {}): RewardScorer {
  const client = createClient(RewardScorerService, [address], { serviceLabel: 'reward service', retryWindowMs: options.retryWindowMs, deadlineMs: options.deadlineMs, channelOptions: RECONNECT });
  return {
    async score(items) {
      const wireItems: ScoreItem[] = items.map((item) => ({
        id: item.id,
        prompt: typeof item.prompt === 'string' ? item.prompt : '',
        promptMessages: typeof item.prompt === 'string' ? [] : item.prompt.map((m) => ({ role: m.role, content: m.content })),
        completion: item.completion,
        groundTruth: item.groundTruth ?? undefined,
        completionTokenIds: item.completionTokenIds,
      }));
      const response = await client.unary('score', { items: wireItems, components: [...components] });
      if (response.scores.length !== items.length) throw new Error(`reward service at ${address}: ${response.scores.length} scores for ${items.length} items`);
      const componentMeans: Record<string, number> = {};
      for (const component of components) componentMeans[component.name] = 0;
      for (const score of response.scores) for (const component of score.components) componentMeans[component.name] += component.value / response.scores.length;
      return { rewards: Float32Array.from(response.scores, (s) => s.reward), componentMeans };
    },
    close: () => client.close(),
  };
}
