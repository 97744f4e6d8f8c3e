/**
 * Deadlines scaled to the work and to what the replicas have shown they
 * need. A fixed deadline long enough for a slow machine (minutes) lets one
 * frozen replica stall every RL step for that long; one short enough to
 * catch it fails honest work on a busy machine. So the deadline of a call is
 * `slack` times the slowest recent cost per unit of work (a requested token,
 * an uploaded byte) times the units this call asks for, kept within
 * [floorMs, capMs]; before any call has succeeded, a configured initial cost
 * per unit stands in for the observations.
 *
 * @example
 * const budget = new LatencyBudget({ initialMsPerUnit: 250, slack: 4, floorMs: 5_000, capMs: 120_000 });
 * const deadlineMs = budget.deadlineMs(4 * 64); // 4 samples x 64 new tokens
 * budget.observe(elapsedMs, 4 * 64);            // after the call succeeded
 */
export interface LatencyBudgetOptions {
  /** Cost per unit assumed until a call has been observed (ms). */
  initialMsPerUnit: number;
  /** Multiple of the slowest recent cost per unit; > 1 leaves room for load spikes. */
  slack: number;
  /** Shortest deadline (ms): connection set-up and scheduling noise are not proportional to the work. */
  floorMs: number;
  /** Longest deadline (ms). */
  capMs: number;
  /** How many recent successful calls are remembered. Default 16. */
  window?: number;
}

export class LatencyBudget {
  private readonly recent: number[] = [];
  private readonly window: number;

  constructor(private readonly opts: LatencyBudgetOptions) {
    const positive = (name: string, v: number) => {
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}: got ${v}, expected a number > 0`);
    };
    positive('initialMsPerUnit', opts.initialMsPerUnit);
    positive('slack', opts.slack);
    positive('floorMs', opts.floorMs);
    positive('capMs', opts.capMs);
    this.window = opts.window ?? 16;
    if (!Number.isInteger(this.window) || this.window < 1) throw new Error(`window: got ${opts.window}, expected an integer >= 1`);
  }

  /** Records a successful call that took `elapsedMs` for `units` of work. */
  observe(elapsedMs: number, units: number): void {
    if (!(units > 0) || !Number.isFinite(elapsedMs) || elapsedMs < 0) return;
    this.recent.push(elapsedMs / units);
    if (this.recent.length > this.window) this.recent.shift();
  }

  /** The slowest recent cost per unit (ms), or the initial one before any observation. */
  get msPerUnit(): number {
    return this.recent.length === 0 ? this.opts.initialMsPerUnit : Math.max(...this.recent);
  }

  /** Whether any call has been observed yet. */
  get observed(): boolean {
    return this.recent.length > 0;
  }

  /**
   * Deadline (ms) of a call of `units` of work, doubled `retries` times for
   * a call re-issued after timing out (the estimate may have been too low),
   * within [floorMs, capMs].
   */
  deadlineMs(units: number, retries = 0): number {
    const base = this.opts.slack * this.msPerUnit * Math.max(units, 1) * 2 ** Math.max(0, retries);
    return Math.round(Math.min(this.opts.capMs, Math.max(Math.min(this.opts.floorMs, this.opts.capMs), base)));
  }
}
