import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { RunSpec } from '@posttrain/proto';
import { resolveRlRunConfig, RlConfigError, runRl } from '@posttrain/rl';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import { checkMessageJson } from '@posttrain/rpc';
import { ProgressReporter } from '@posttrain/training';
import { UsageError, type Command } from '../command';
import { startLocalServices, type LocalServiceGroup, type LocalServiceSpec } from '../local-services';
import { takeSetOverrides } from './train-stage';

const options = defineConfig({
  config: { kind: 'string', flag: 'config', description: 'run spec (YAML or JSON): the posttrain.v1.RunSpec message with a ppo or grpo section; see examples/configs/', required: true },
  resume: { kind: 'bool', flag: 'resume', description: 'continue the run from its last checkpoint', default: false },
  samplers: { kind: 'int', flag: 'samplers', description: 'sampler replicas to start when the spec names no services', default: 1, min: 1, max: 16 },
  rewardModel: { kind: 'string', flag: 'reward-model', description: 'reward model directory for the reward service started on the fly (for reward_model components)' },
  progress: { kind: 'bool', flag: 'progress', description: 'progress bar on a terminal, log lines otherwise', default: true },
  json: { kind: 'bool', flag: 'json', description: 'print the result as one JSON object at the end', default: false },
  serviceRetryMs: { kind: 'int', flag: 'service-retry-ms', env: 'POSTTRAIN_SERVICE_RETRY_MS', description: 'how long calls to the reference and reward services retry UNAVAILABLE before the run fails', default: 60_000, min: 0 },
});

/** Sets `a.b.c` in a plain object; the value is read as YAML (numbers, booleans, lists). */
export function setPath(obj: Record<string, unknown>, dotted: string, raw: string): void {
  const keys = dotted.split('.');
  let cur: Record<string, unknown> = obj;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (next === undefined || next === null) cur[k] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) throw new UsageError(`--set ${dotted}: "${k}" is not a section`);
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]] = parseYaml(raw);
}

function loadSpec(path: string, overrides: readonly string[]): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${path}: cannot read the config file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new UsageError(`${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UsageError(`${path}: expected a mapping of RunSpec keys`);
  const obj = raw as Record<string, unknown>;
  for (const o of overrides) {
    const eq = o.indexOf('=');
    setPath(obj, o.slice(0, eq), o.slice(eq + 1));
  }
  try {
    checkMessageJson('posttrain.v1.RunSpec', obj, path);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return obj;
}

/**
 * `posttrain ppo|grpo --config spec.yaml`: an online RL run driving the
 * serving tier. With no service addresses in the spec it starts samplers, a
 * reference and a reward service on loopback for the run and stops them after.
 */
export function rlStageCommand(stage: 'ppo' | 'grpo'): Command {
  const title = stage === 'ppo' ? 'PPO with a KL penalty to the reference (RLHF), a critic and GAE' : 'GRPO with verifiable rewards (group advantages: GRPO, Dr. GRPO, RLOO, REINFORCE++)';
  return {
    name: stage,
    summary: `train: ${title}`,
    help: () =>
      `usage: posttrain ${stage} --config spec.yaml [--set key=value ...] [options]\n\n${title}.\nThe config is a posttrain.v1.RunSpec in YAML (snake_case keys as in protos/posttrain/v1/trainer.proto);\nunknown keys are errors. Without ${stage}.services addresses, the services are started on loopback:\nsamplers and the reference serve base_model_dir, the reward service scores the rules.\n\nOptions:\n${describeConfig(options)}\n  --set <key=value>             override a key (repeatable), e.g. --set ${stage}.kl.coefficient=0.02\n`,
    run: async (argv, io) => {
      const { overrides, rest } = takeSetOverrides(argv);
      const opts = parseConfig(options, { argv: rest });
      const obj = loadSpec(opts.config, overrides);
      const spec = RunSpec.fromJSON(obj);
      if (spec.stage?.$case !== stage) throw new UsageError(`${opts.config}: the spec's stage is ${spec.stage ? `"${spec.stage.$case}"` : 'not set'}, but this is \`posttrain ${stage}\`; add a ${stage}: section`);
      if (opts.resume) spec.resume = true;
      const stageSpec = spec.stage.value;
      let group: LocalServiceGroup | undefined;
      const controller = new AbortController();
      void io.interrupted.then((sig) => {
        io.stderr.write(`posttrain ${stage}: ${sig}: stopping at the next step boundary (a final checkpoint is written)\n`);
        controller.abort();
      });
      try {
        const services = stageSpec.services ?? { samplerAddresses: [], referenceAddress: '', rewardAddress: '' };
        if (services.samplerAddresses.length === 0 && !services.referenceAddress && !services.rewardAddress) {
          if (!spec.baseModelDir) throw new UsageError(`${opts.config}: base_model_dir: required key is missing`);
          io.stderr.write(`posttrain ${stage}: no services in the spec; starting ${opts.samplers} sampler(s), a reference and a reward service on loopback\n`);
          const specs: LocalServiceSpec[] = [];
          for (let i = 0; i < opts.samplers; i++) specs.push({ name: 'policy-sampler', label: `policy-sampler-${i + 1}`, args: ['--model', spec.baseModelDir] });
          specs.push({ name: 'reference', label: 'reference', args: ['--model', spec.baseModelDir] });
          specs.push({ name: 'reward', label: 'reward', args: opts.rewardModel ? ['--reward-model', opts.rewardModel] : [] });
          group = await startLocalServices(specs, { host: '127.0.0.1', startupTimeoutMs: 180_000 });
          stageSpec.services = {
            samplerAddresses: group.services.filter((s) => s.name === 'policy-sampler').map((s) => s.address),
            referenceAddress: group.services.find((s) => s.name === 'reference')!.address,
            rewardAddress: group.services.find((s) => s.name === 'reward')!.address,
          };
        }
        let config;
        try {
          config = resolveRlRunConfig(spec);
        } catch (e) {
          if (e instanceof RlConfigError) throw new UsageError(`${opts.config}: ${e.message}`);
          throw e;
        }
        const progress = opts.progress ? new ProgressReporter({ keys: ['objective/scores', 'objective/kl', 'policy/clipfrac', 'loss/policy'] }) : undefined;
        let last = Date.now();
        const result = await runRl(config, {
          signal: controller.signal,
          serviceRetryMs: opts.serviceRetryMs,
          callbacks: {
            onStep: (e) => {
              const now = Date.now();
              const tokens = (e.metrics['rollout/count'] ?? 0) * (e.metrics['rollout/completion_length'] ?? 0);
              progress?.update({ step: e.step, totalSteps: e.totalSteps, tokensPerSecond: tokens / Math.max(1e-3, (now - last) / 1000), metrics: e.metrics, logStep: true });
              last = now;
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
        await group?.stop();
      }
    },
  };
}
