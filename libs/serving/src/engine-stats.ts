import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** One decoding step: how many sequences shared the forward pass and sampled a token. */
interface StepRecord {
  at: number;
  batch: number;
}

export interface EngineStatsSnapshot {
  runningSequences: number;
  completionsTotal: number;
  generatedTokensTotal: number;
  /** Generated tokens per second over the window. */
  tokensPerSecond: number;
  /** Mean sequences per decoding step over the window. */
  meanBatchSize: number;
  /** Largest batch in the window. */
  maxBatchSize: number;
}

/**
 * Running statistics of a generation engine over a sliding window (60 s by
 * default), for GetInfo, plus Prometheus metrics when a registry is given.
 */
export class EngineStats {
  private readonly steps: StepRecord[] = [];
  private completions = 0;
  private tokens = 0;
  private readonly started: number;
  private readonly batchHistogram?: Histogram;
  private readonly tokenCounter?: Counter;
  private readonly completionCounter?: Counter<'finish_reason'>;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly windowMs = 60_000,
    registry?: Registry,
    gauges?: { queueDepth: () => number; running: () => number; weightsVersion: () => number },
  ) {
    this.started = now();
    if (registry) {
      this.batchHistogram = new Histogram({ name: 'posttrain_sampler_batch_size', help: 'sequences per decoding step (forward pass)', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry] });
      this.tokenCounter = new Counter({ name: 'posttrain_sampler_generated_tokens_total', help: 'tokens generated', registers: [registry] });
      this.completionCounter = new Counter({ name: 'posttrain_sampler_completions_total', help: 'completions finished, by finish reason', labelNames: ['finish_reason'], registers: [registry] });
      if (gauges) {
        new Gauge({ name: 'posttrain_sampler_queue_depth', help: 'Generate requests waiting for a batch slot', registers: [registry], collect() { this.set(gauges.queueDepth()); } });
        new Gauge({ name: 'posttrain_sampler_running_sequences', help: 'sequences being generated', registers: [registry], collect() { this.set(gauges.running()); } });
        new Gauge({ name: 'posttrain_sampler_weights_version', help: 'weights version being served', registers: [registry], collect() { this.set(gauges.weightsVersion()); } });
      }
    }
  }

  recordStep(batch: number): void {
    const at = this.now();
    this.steps.push({ at, batch });
    this.tokens += batch;
    this.batchHistogram?.observe(batch);
    this.tokenCounter?.inc(batch);
    this.prune(at);
  }

  recordCompletion(finishReason: string): void {
    this.completions++;
    this.completionCounter?.inc({ finish_reason: finishReason });
  }

  private prune(at: number): void {
    let drop = 0;
    while (drop < this.steps.length && this.steps[drop].at < at - this.windowMs) drop++;
    if (drop > 0) this.steps.splice(0, drop);
  }

  snapshot(runningSequences: number): EngineStatsSnapshot {
    const at = this.now();
    this.prune(at);
    const span = Math.max(1e-3, Math.min(this.windowMs, at - this.started)) / 1000;
    let sum = 0;
    let max = 0;
    for (const s of this.steps) {
      sum += s.batch;
      if (s.batch > max) max = s.batch;
    }
    return {
      runningSequences,
      completionsTotal: this.completions,
      generatedTokensTotal: this.tokens,
      tokensPerSecond: sum / span,
      meanBatchSize: this.steps.length ? sum / this.steps.length : 0,
      maxBatchSize: max,
    };
  }
}
