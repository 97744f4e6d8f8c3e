/**
 * Where an online step's rollouts come from: the prompts of the step, sent
 * to the sampler pool. With max_staleness = 0 a step's prompts are sent when
 * the step starts and the trainer waits for them (synchronous). With
 * max_staleness = k >= 1 the queue keeps the next k steps' prompts in flight
 * while the trainer trains, so the samplers generate with the newest weights
 * they hold while the trainer is busy (asynchronous): a request issued at
 * step s is consumed at step s + j <= s + k, when the weights are j versions
 * newer, so no rollout is more than k versions old when it is used.
 *
 * A checkpoint records the data position before the first batch not yet
 * consumed: a resumed run draws and sends those prompts again. Rollouts that
 * were in flight at the checkpoint are discarded, never trained on twice;
 * the rollout ledger (rollout-ledger.jsonl) lists the prompt lines each step
 * consumed and dropped, with the weights versions of their rollouts.
 */
import type { ChatMessage, DataPosition, PromptBatch } from '@posttrain/data';
import type { OnlineRun } from './online-run';
import type { RolloutsResult } from './rollout-types';

export interface PromptInfo {
  prompt: string | ChatMessage[];
  groundTruth: string | null;
  /** The prompt's line in the data file. */
  line: number;
}

/** One step's prompts and the pool's answer. */
export interface StepRollouts {
  step: number;
  /** Prompt id -> the prompt, its ground truth and its line. */
  prompts: Map<string, PromptInfo>;
  generated: RolloutsResult;
  /** Seconds the trainer waited for these rollouts (0 when they were ready). */
  waitSeconds: number;
}

interface Pending {
  step: number;
  /** The data position before this step's prompts were drawn. */
  position: DataPosition;
  prompts: Map<string, PromptInfo>;
  request: Promise<RolloutsResult>;
}

export class RolloutQueue {
  private readonly pending: Pending[] = [];
  private nextStep: number;
  private requestsInFlight = 0;
  private busySince = 0;
  private busyMs = 0;

  constructor(
    private readonly run: OnlineRun,
    /** Steps of prompts kept in flight ahead of the one being trained (max_staleness). */
    private readonly depth: number,
    private readonly signal: AbortSignal | undefined,
    firstStep: number,
  ) {
    this.nextStep = firstStep;
  }

  /** Draws step `step`'s prompts and sends them to the pool; the answer is awaited later. */
  private async issue(step: number): Promise<void> {
    const { run } = this;
    const position = run.prompts.position();
    const batch: PromptBatch = await run.prompts.next();
    const prompts = new Map<string, PromptInfo>();
    const requestPrompts = Array.from({ length: batch.batchSize }, (_, i) => {
      const id = `s${step}-p${i}-l${batch.lines[i]}`;
      prompts.set(id, { prompt: batch.prompts[i], groundTruth: batch.groundTruths[i], line: batch.lines[i] });
      const length = batch.seqLen;
      const row = Array.from(batch.inputIds.subarray(i * length, (i + 1) * length));
      const mask = batch.attentionMask.subarray(i * length, (i + 1) * length);
      return { id, tokenIds: row.filter((_, t) => mask[t] === 1) };
    });
    const { config } = run;
    if (this.requestsInFlight++ === 0) this.busySince = Date.now();
    const request = run.pool.generate(requestPrompts, { n: config.samplesPerPrompt, sampling: config.sampling, seed: config.seed, signal: this.signal }).finally(() => {
      if (--this.requestsInFlight === 0) this.busyMs += Date.now() - this.busySince;
    });
    // A request consumed later must not crash the process if it fails first; the failure is seen when it is taken.
    request.catch(() => undefined);
    this.pending.push({ step, position, prompts, request });
  }

  /** The rollouts of `step`, after sending the prompts of the next `depth` steps (never past the last step). */
  async take(step: number): Promise<StepRollouts> {
    if (this.pending.length > 0 && this.pending[0].step !== step) throw new Error(`rollout queue: step ${step} asked for, step ${this.pending[0].step} is next`);
    this.nextStep = Math.max(this.nextStep, step);
    while (this.nextStep <= Math.min(step + this.depth, this.run.totalSteps)) await this.issue(this.nextStep++);
    const head = this.pending.shift();
    if (!head) throw new Error(`rollout queue: step ${step} was already taken or is past the last step ${this.run.totalSteps}`);
    const started = Date.now();
    const generated = await head.request;
    return { step, prompts: head.prompts, generated, waitSeconds: (Date.now() - started) / 1000 };
  }

  /** The data position a checkpoint records: before the first batch not yet consumed. */
  position(): DataPosition {
    return this.pending[0]?.position ?? this.run.prompts.position();
  }

  /** Seconds so far during which at least one request was in flight on the samplers. */
  busySeconds(): number {
    return (this.busyMs + (this.requestsInFlight > 0 ? Date.now() - this.busySince : 0)) / 1000;
  }

  /** Steps whose prompts are in flight. */
  get inFlight(): number {
    return this.pending.length;
  }

  /** Waits for requests still in flight (after a cancellation or an error), ignoring their outcome. */
  async settle(): Promise<void> {
    await Promise.all(this.pending.map((p) => p.request.catch(() => undefined)));
    this.pending.length = 0;
  }
}
