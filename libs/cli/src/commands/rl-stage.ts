import { existsSync, statSync } from 'node:fs';
import { resolveRlRunConfig, RlConfigError, runRl } from '@posttrain/rl';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import { ProgressReporter, type RunConfig } from '@posttrain/training';
import { startTracingIfExported, startTrainMetricsServer, type TrainMetricsServer } from '@posttrain/telemetry';
import { UsageError, type Command } from '../command';
import { startLocalServices, type LocalServiceGroup, type LocalServiceSpec } from '../local-services';
import { requireModelDir } from '../model-dir';
import { loadStageConfig, takeSetOverrides } from './train-stage';

const options = defineConfig({
  config: { kind: 'string', flag: 'config', description: 'run config (YAML or JSON) with stage ppo or grpo; see examples/configs/', required: true },
  resume: { kind: 'bool', flag: 'resume', description: 'continue the run from its last checkpoint', default: false },
  samplers: { kind: 'int', flag: 'samplers', description: 'sampler replicas to start when the config names no services', default: 1, min: 1, max: 16 },
  rewardModel: { kind: 'string', flag: 'reward-model', description: 'reward model directory for the reward service started on the fly (for reward_model components)' },
  progress: { kind: 'bool', flag: 'progress', description: 'progress bar on a terminal, log lines otherwise', default: true },
  json: { kind: 'bool', flag: 'json', description: 'print the result as one JSON object at the end', default: false },
  metricsPort: { kind: 'int', flag: 'metrics-port', description: 'serve the run\'s progress (step, loss, reward, KL, push seconds) as Prometheus gauges on /metrics at this port; unset = off, 0 = any free port', min: 0, max: 65535 },
  metricsHost: { kind: 'string', flag: 'metrics-host', description: 'address the --metrics-port server binds', default: '127.0.0.1' },
  metricsLingerS: { kind: 'number', flag: 'metrics-linger-s', description: 'after the run, keep /metrics up until a scrape reads the last step, at most this many seconds (0: close at once)', default: 15, min: 0, max: 600 },
  serviceRetryMs: { kind: 'int', flag: 'service-retry-ms', env: 'POSTTRAIN_SERVICE_RETRY_MS', description: 'how long calls to the reference and reward services retry UNAVAILABLE before the run fails', default: 60_000, min: 0 },
});

/**
 * The files a run reads, checked before any service starts: a typo in `model` would otherwise
 * surface only as services that never become ready.
 */
function checkInputs(config: RunConfig, file: string, rewardModel: string | undefined): void {
  const dataFile = (key: string, path: string) => {
    if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`${file}: ${key}: file ${JSON.stringify(path)} does not exist`);
  };
  requireModelDir(config.model, `${file}: model`);
  dataFile('dataset.train', config.dataset.train);
  if (config.ppo?.value_model) requireModelDir(config.ppo.value_model, `${file}: ppo.value_model`);
  if (config.ppo?.ptx_dataset) dataFile('ppo.ptx_dataset', config.ppo.ptx_dataset);
  if (rewardModel !== undefined) requireModelDir(rewardModel, '--reward-model');
}

/**
 * `posttrain ppo|grpo --config run.yaml`: an online RL run driving the
 * serving tier. With no service addresses in the config it starts samplers, a
 * reference and a reward service on loopback for the run and stops them after.
 */
export function rlStageCommand(stage: 'ppo' | 'grpo'): Command {
  const title = stage === 'ppo' ? 'PPO with a KL penalty to the reference (RLHF), a critic and GAE' : 'GRPO with verifiable rewards (group advantages: GRPO, Dr. GRPO, RLOO, REINFORCE++)';
  return {
    name: stage,
    summary: `train: ${title}`,
    help: () =>
      `usage: posttrain ${stage} --config run.yaml [--set key=value ...] [options]\n\n${title}.\nThe config is a run config with TRL's key names (as for lm, sft, rm, dpo; see examples/configs/${stage}.yaml);\nunknown keys are errors. Without ${stage}.services addresses, the services are started on loopback:\nsamplers and the reference serve the model, the reward service scores the rules.\n\nOptions:\n${describeConfig(options)}\n  --set <key=value>             override a config key (repeatable), typed like the file: ${stage}.${stage === 'ppo' ? 'kl_coef' : 'beta'}=0.02\n`,
    run: async (argv, io) => {
      const { overrides, rest } = takeSetOverrides(argv);
      const opts = parseConfig(options, { argv: rest });
      if (opts.resume) overrides.push('resume=true');
      const config = await loadStageConfig(stage, opts.config, overrides);
      const section = (config.ppo ?? config.grpo)!;
      let group: LocalServiceGroup | undefined;
      let metrics: TrainMetricsServer | undefined;
      const tracing = startTracingIfExported(`posttrain-${stage}`);
      const controller = new AbortController();
      void io.interrupted.then((sig) => {
        io.stderr.write(`posttrain ${stage}: ${sig}: stopping at the next step boundary (a final checkpoint is written)\n`);
        controller.abort();
      });
      try {
        if (opts.metricsPort !== undefined) {
          try {
            metrics = await startTrainMetricsServer(opts.metricsPort, opts.metricsHost, { service: `posttrain-${stage}`, ...(config.run_id ? { run_id: config.run_id } : {}) });
          } catch (err) {
            throw new UsageError(`--metrics-port ${opts.metricsPort} --metrics-host ${opts.metricsHost}: cannot serve /metrics there (${(err as Error).message}); expected a free port on a local address`);
          }
          io.stderr.write(`posttrain ${stage}: Prometheus metrics on http://${opts.metricsHost}:${metrics.port}/metrics\n`);
        }
        checkInputs(config, opts.config, opts.rewardModel);
        const { services } = section;
        if (services.sampler_addresses.length === 0 && !services.sampler_dns && !services.sampler_file && !services.reference_address && !services.reward_address) {
          io.stderr.write(`posttrain ${stage}: no services in the config; starting ${opts.samplers} sampler(s), a reference and a reward service on loopback\n`);
          const specs: LocalServiceSpec[] = [];
          for (let i = 0; i < opts.samplers; i++) specs.push({ name: 'policy-sampler', label: `policy-sampler-${i + 1}`, args: ['--model', config.model] });
          specs.push({ name: 'reference', label: 'reference', args: ['--model', config.model] });
          specs.push({ name: 'reward', label: 'reward', args: opts.rewardModel ? ['--reward-model', opts.rewardModel] : [] });
          group = await startLocalServices(specs, { host: '127.0.0.1', startupTimeoutMs: 180_000 });
          section.services = {
            ...services,
            sampler_addresses: group.services.filter((s) => s.name === 'policy-sampler').map((s) => s.address),
            reference_address: group.services.find((s) => s.name === 'reference')!.address,
            reward_address: group.services.find((s) => s.name === 'reward')!.address,
          };
        }
        let rlConfig;
        try {
          rlConfig = resolveRlRunConfig(config);
        } catch (err) {
          if (err instanceof RlConfigError) throw new UsageError(`${opts.config}: ${err.message}`);
          throw err;
        }
        const progress = opts.progress ? new ProgressReporter({ keys: ['objective/scores', 'objective/kl', 'policy/clipfrac', 'loss/policy'] }) : undefined;
        let last = Date.now();
        const result = await runRl(rlConfig, {
          signal: controller.signal,
          serviceRetryMs: opts.serviceRetryMs,
          callbacks: {
            onStep: (e) => {
              const now = Date.now();
              const tokens = (e.metrics['rollout/count'] ?? 0) * (e.metrics['rollout/completion_length'] ?? 0);
              progress?.update({ step: e.step, totalSteps: e.totalSteps, tokensPerSecond: tokens / Math.max(1e-3, (now - last) / 1000), metrics: e.metrics, logStep: true });
              last = now;
              metrics?.update(e.step, e.totalSteps, e.metrics);
            },
          },
        });
        if (opts.json) io.stdout.write(JSON.stringify(result) + '\n');
        else {
          io.stdout.write(`${result.status} ${result.runId} at step ${result.step}/${result.totalSteps} (sampler weights version ${result.weightsVersion})\n  run dir:  ${result.runDir}\n`);
          if (result.modelDir) io.stdout.write(`  model:    ${result.modelDir}\n`);
          const m = result.lastMetrics;
          const show = ['objective/scores', 'objective/kl', 'objective/kl_coef', 'policy/clipfrac', 'loss/policy'].filter((k) => k in m).map((k) => `${k}=${m[k].toPrecision(4)}`);
          if (show.length) io.stdout.write(`  last:     ${show.join('  ')}\n`);
        }
        return result.status === 'completed' ? 0 : 130;
      } finally {
        await metrics?.close(opts.metricsLingerS * 1000);
        await group?.stop();
        await tracing?.shutdown();
      }
    },
  };
}
