import { Gauge, type Registry } from 'prom-client';
import { createMetricsRegistry, startMetricsServer } from './metrics-server';

/** The Prometheus gauges of a training run, each set from the first of its keys a step's metrics hold. */
export const TRAIN_GAUGES = [
  { name: 'posttrain_train_loss', keys: ['loss/policy', 'train/loss'], help: 'loss of the last step (PPO/GRPO: loss/policy; lm, sft, rm, dpo: train/loss)' },
  { name: 'posttrain_train_reward', keys: ['objective/scores'], help: 'mean reward of the last step (objective/scores)' },
  { name: 'posttrain_train_kl', keys: ['objective/kl'], help: 'KL to the reference of the last step (objective/kl)' },
  { name: 'posttrain_train_push_seconds', keys: ['time/push_seconds'], help: 'seconds the last weights push to the samplers took (time/push_seconds)' },
] as const;

export interface TrainGauges {
  /** Sets the gauges from a finished step (with `labels` for the label names given); a key missing or not finite leaves its gauge as it was. */
  update(step: number, totalSteps: number, metrics: Record<string, number>, labels?: Record<string, string>): void;
}

/**
 * Registers posttrain_train_step, posttrain_train_total_steps and the TRAIN_GAUGES on `registry`,
 * labelled by `labelNames` (the Trainer service labels them by run_id). `onCollect` is called on every scrape.
 */
export function registerTrainGauges(registry: Registry, labelNames: readonly string[] = [], onCollect?: () => void): TrainGauges {
  const step = new Gauge({
    name: 'posttrain_train_step',
    help: 'last finished training step',
    labelNames: [...labelNames],
    registers: [registry],
    collect() {
      onCollect?.();
    },
  });
  const total = new Gauge({ name: 'posttrain_train_total_steps', help: 'steps the run will take', labelNames: [...labelNames], registers: [registry] });
  const gauges = TRAIN_GAUGES.map((g) => ({ keys: g.keys, gauge: new Gauge({ name: g.name, help: g.help, labelNames: [...labelNames], registers: [registry] }) }));
  return {
    update(s, totalSteps, metrics, labels = {}) {
      step.set(labels, s);
      total.set(labels, totalSteps);
      for (const { keys, gauge } of gauges) {
        const value = keys.map((k) => metrics[k]).find((v) => typeof v === 'number' && Number.isFinite(v));
        if (value !== undefined) gauge.set(labels, value);
      }
    },
  };
}

export interface TrainMetricsServer {
  /** The bound port. */
  port: number;
  /** Sets the gauges from a finished step; a key missing from `metrics` (or not finite) leaves its gauge as it was. */
  update(step: number, totalSteps: number, metrics: Record<string, number>): void;
  /**
   * Stops serving. If no scrape has read the last update yet (a scraper
   * that has been reading, or one that has not come yet: a short run can end
   * between two scrapes), waits first for the next scrape, at most
   * `finalScrapeWaitMs`, so that the run's last values reach Prometheus.
   */
  close(finalScrapeWaitMs?: number): Promise<void>;
}

/**
 * Serves a training run's progress on `GET /metrics`: posttrain_train_step and
 * posttrain_train_total_steps, and the TRAIN_GAUGES, plus Node's process
 * metrics, each labelled with `labels`.
 */
export async function startTrainMetricsServer(port: number, host: string, labels: Record<string, string>): Promise<TrainMetricsServer> {
  const registry = createMetricsRegistry(labels);
  let lastScrape = -1;
  let lastUpdate = -1;
  let clock = 0;
  const gauges = registerTrainGauges(registry, [], () => {
    lastScrape = ++clock;
  });
  const server = await startMetricsServer(registry, port, host);
  return {
    port: server.port,
    update(s, totalSteps, metrics) {
      gauges.update(s, totalSteps, metrics);
      lastUpdate = ++clock;
    },
    async close(finalScrapeWaitMs = 0) {
      const deadline = Date.now() + finalScrapeWaitMs;
      while (lastScrape < lastUpdate && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await server.close();
    },
  };
}
