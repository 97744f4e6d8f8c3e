/**
 * posttrain trainer: runs SFT, reward-model, DPO, PPO and GRPO, and drives
 * the sampler pool, the reference and the reward service for the online stages.
 * Each run trains in its own worker process, so the API and health stay live.
 *
 * Run: `node --import tsx services/trainer/src/main.ts --port 50054` (or `posttrain up`).
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { startDashboardServer } from '@posttrain/dashboard';
import { TrainerService } from '@posttrain/proto';
import { defineConfig } from '@posttrain/flags';
import { mainOf, type ServiceDefinitionOptions } from '@posttrain/rpc';
import { defaultRolloutServices, defaultSamplerSource } from './default-services';
import { RunRegistry } from './run-registry';
import { exportRunGauges } from './run-gauges';
import { ServiceHealthPoller } from './service-health';
import { createTrainerHandlers } from './trainer-handlers';

const config = defineConfig({
  runsDir: { kind: 'string', flag: 'runs-dir', env: 'POSTTRAIN_RUNS_DIR', description: 'where runs/<id>/ directories are written; the root every RunSpec output_dir must lie in', default: 'runs' },
  modelsRoot: { kind: 'string', flag: 'models-root', env: 'POSTTRAIN_MODELS_ROOT', description: 'the root every RunSpec model directory must lie in (or in the runs directory)', default: 'models' },
  dataRoot: { kind: 'string', flag: 'data-root', env: 'POSTTRAIN_DATA_ROOT', description: 'the root every RunSpec dataset file must lie in', default: 'data' },
  resumeInterrupted: { kind: 'bool', flag: 'resume-interrupted', env: 'POSTTRAIN_RESUME_INTERRUPTED', description: 'at start, resume the runs that were active when the trainer last stopped', default: false },
  samplerAddresses: { kind: 'list', flag: 'sampler-addresses', env: 'POSTTRAIN_SAMPLER_ADDRESSES', description: 'policy samplers for PPO/GRPO runs whose spec names none (comma-separated)', default: [] as string[] },
  samplerDns: { kind: 'string', flag: 'sampler-dns', env: 'POSTTRAIN_SAMPLER_DNS', description: 'instead of --sampler-addresses: an elastic sampler pool from a headless Service, name:port, resolved again every --sampler-refresh-seconds (replicas that join are synced to the current weights first)', default: '' },
  samplerFile: { kind: 'string', flag: 'sampler-file', env: 'POSTTRAIN_SAMPLER_FILE', description: 'instead of --sampler-addresses: an elastic sampler pool from a file of host:port lines, read again every --sampler-refresh-seconds', default: '' },
  samplerRefreshSeconds: { kind: 'number', flag: 'sampler-refresh-seconds', env: 'POSTTRAIN_SAMPLER_REFRESH_SECONDS', description: 'how often --sampler-dns or --sampler-file is read again (seconds)', default: 10, min: 0.1, max: 3600 },
  referenceAddress: { kind: 'string', flag: 'reference-address', env: 'POSTTRAIN_REFERENCE_ADDRESS', description: 'reference service for PPO/GRPO runs whose spec names none', default: '' },
  rewardAddress: { kind: 'string', flag: 'reward-address', env: 'POSTTRAIN_REWARD_ADDRESS', description: 'reward service for PPO/GRPO runs whose spec names none', default: '' },
  dashboardPort: { kind: 'int', flag: 'dashboard-port', env: 'POSTTRAIN_DASHBOARD_PORT', description: 'serve the live run dashboard (HTTP, read-only) on this port of --host; unset = off, 0 = any free port', min: 0, max: 65535 },
  dashboardMaxClients: { kind: 'int', flag: 'dashboard-max-clients', env: 'POSTTRAIN_DASHBOARD_MAX_CLIENTS', description: 'open dashboard pages (event streams) at most; one more is answered 503', default: 16, min: 1, max: 1000 },
  dashboardHealthIntervalMs: { kind: 'int', flag: 'dashboard-health-interval-ms', env: 'POSTTRAIN_DASHBOARD_HEALTH_INTERVAL_MS', description: "how often the dashboard checks the default services' health and the samplers' weights version", default: 5_000, min: 200, max: 600_000 },
  serviceRetryMs: { kind: 'int', flag: 'service-retry-ms', env: 'POSTTRAIN_SERVICE_RETRY_MS', description: 'how long PPO/GRPO calls to the reference and reward services retry UNAVAILABLE (a restarting pod) before the run fails', default: 60_000, min: 0 },
});

export const trainerService: ServiceDefinitionOptions<typeof config> = {
  name: 'trainer',
  summary: 'SFT, reward-model, DPO, PPO and GRPO runs',
  defaultPort: 50054,
  config,
  setup: async ({ server, config: c, log }) => {
    const runsDir = resolve(c.runsDir);
    mkdirSync(runsDir, { recursive: true });
    const registry = new RunRegistry(runsDir, log);
    const defaultServices = defaultRolloutServices(c);
    const handlers = createTrainerHandlers(registry, {
      defaultServices,
      roots: { models: c.modelsRoot, data: c.dataRoot, runs: runsDir },
      serviceRetryMs: c.serviceRetryMs,
    });
    server.add('posttrain.v1.Trainer', TrainerService, handlers);
    exportRunGauges(registry, server.metrics);
    if (c.dashboardPort !== undefined) {
      let broadcast: (s: ReturnType<ServiceHealthPoller['current']>) => void = () => undefined;
      const poller = new ServiceHealthPoller({ samplerAddresses: c.samplerAddresses, samplerSource: defaultSamplerSource(defaultServices), referenceAddress: c.referenceAddress, rewardAddress: c.rewardAddress }, c.dashboardHealthIntervalMs, (s) => broadcast(s));
      const dashboard = await startDashboardServer(registry, c.host, c.dashboardPort, { maxClients: c.dashboardMaxClients, services: () => poller.current() });
      broadcast = (s) => dashboard.handler.broadcastServices(s);
      poller.start();
      server.onShutdown(async () => {
        poller.stop();
        await dashboard.close();
      });
      log.lifecycle('dashboard', { event: 'dashboard', url: dashboard.url, port: dashboard.port });
    }
    if (c.resumeInterrupted) {
      for (const run of registry.interrupted()) {
        try {
          await handlers.startRun({ spec: { ...run.spec!, runId: run.id, resume: run.lastCheckpoint !== undefined } }, undefined as never);
          log.info('resuming an interrupted run', { run_id: run.id, checkpoint: run.lastCheckpoint?.path });
        } catch (err) {
          log.warn('cannot resume an interrupted run', { run_id: run.id, err: (err as Error).message });
        }
      }
    }
    // Training runs in worker processes (fork-run-worker.ts): this process loads no model and is ready at once.
    return { ready: Promise.resolve() };
  },
};

if (require.main === module) mainOf(trainerService);
