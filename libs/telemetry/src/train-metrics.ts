import { Gauge } from 'prom-client';
import { createMetricsRegistry, startMetricsServer } from './metrics-server';

/** The Prometheus gauges of a training run, each set from one key of a step's metrics. */
export const TRAIN_GAUGES = [
  { name: 'posttrain_train_loss', key: 'loss/policy', help: 'policy loss of the last step (loss/policy)' },
  { name: 'posttrain_train_reward', key: 'objective/scores', help: 'mean reward of the last step (objective/scores)' },
  { name: 'posttrain_train_kl', key: 'objective/kl', help: 'KL to the reference of the last step (objective/kl)' },
  { name: 'posttrain_train_push_seconds', key: 'time/push_seconds', help: 'seconds the last weights push to the samplers took (time/push_seconds)' },
] as const;

export interface TrainMetricsServer {
  /** The bound port. */
  port: number;
  /** Sets the gauges from a finished step; a key missing from `metrics` (or not finite) leaves its gauge as it was. */
  update(step: number, totalSteps: number, metrics: Record<string, number>): void;
  /**
   * Stops serving. If a scraper has been seen and has not read the last
   * update yet, waits first for its next scrape, at most `finalScrapeWaitMs`,
   * so that the run's last values reach Prometheus.
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
  const step = new Gauge({
    name: 'posttrain_train_step',
    help: 'last finished training step',
    registers: [registry],
    collect() {
      lastScrape = ++clock;
    },
  });
  const total = new Gauge({ name: 'posttrain_train_total_steps', help: 'steps the run will take', registers: [registry] });
  const gauges = TRAIN_GAUGES.map((g) => ({ key: g.key, gauge: new Gauge({ name: g.name, help: g.help, registers: [registry] }) }));
  const server = await startMetricsServer(registry, port, host);
  return {
    port: server.port,
    update(s, totalSteps, metrics) {
      step.set(s);
      total.set(totalSteps);
      for (const { key, gauge } of gauges) {
        const v = metrics[key];
        if (typeof v === 'number' && Number.isFinite(v)) gauge.set(v);
      }
      lastUpdate = ++clock;
    },
    async close(finalScrapeWaitMs = 0) {
      const deadline = Date.now() + finalScrapeWaitMs;
      while (lastScrape >= 0 && lastScrape < lastUpdate && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await server.close();
    },
  };
}
