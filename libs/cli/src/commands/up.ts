import { defineConfig, describeConfig, parseConfig } from '@posttrain/rpc';
import type { Command } from '../command';
import { startLocalServices, type LocalServiceSpec } from '../local-services';
import { SERVICE_NAMES } from '../repo-paths';

const options = defineConfig({
  host: { kind: 'string', flag: 'host', description: 'address the services listen on', default: '127.0.0.1' },
  samplers: { kind: 'int', flag: 'samplers', description: 'number of policy-sampler replicas', default: 1, min: 1, max: 64 },
  json: { kind: 'bool', flag: 'json', description: 'print the addresses as one JSON line (for scripts)', default: false },
  logs: { kind: 'bool', flag: 'logs', description: "forward the services' JSON logs to stderr", default: false },
  model: { kind: 'string', flag: 'model', description: 'model directory the samplers serve (and the reference, unless --reference-model)' },
  referenceModel: { kind: 'string', flag: 'reference-model', description: 'model directory of the frozen reference (default: --model)' },
  rewardModel: { kind: 'string', flag: 'reward-model', description: 'reward model directory (a scalar-head model) for the reward service' },
  runsDir: { kind: 'string', flag: 'runs-dir', description: "the trainer's runs directory (default: POSTTRAIN_RUNS_DIR, else runs)" },
  startupTimeoutMs: { kind: 'int', flag: 'startup-timeout-ms', description: 'how long to wait for every service to be SERVING', default: 120_000, min: 1 },
});

const GRPC_NAMES: Record<string, string> = {
  'policy-sampler': 'posttrain.v1.PolicySampler',
  reference: 'posttrain.v1.ReferenceModel',
  reward: 'posttrain.v1.RewardScorer',
  trainer: 'posttrain.v1.Trainer',
};

/**
 * `posttrain up`: the four services on loopback, real gRPC, each its own
 * process, until Ctrl-C (which drains them gracefully).
 */
export const upCommand: Command = {
  name: 'up',
  summary: 'start the four services on loopback and print their addresses',
  help: () => `usage: posttrain up [options]\n\nStarts policy-sampler (x --samplers), reference, reward and trainer as separate processes on free\nports (without --model the sampler and reference serve no model and answer FAILED_PRECONDITION), waits until each answers SERVING on grpc.health.v1, prints the addresses, and runs until\nCtrl-C or SIGTERM, which shut them down gracefully.\n\nOptions:\n${describeConfig(options)}\n`,
  run: async (argv, io) => {
    const opts = parseConfig(options, { argv });
    const specs: LocalServiceSpec[] = [];
    const argsOf: Record<string, string[]> = {
      'policy-sampler': opts.model ? ['--model', opts.model] : [],
      reference: opts.referenceModel ?? opts.model ? ['--model', (opts.referenceModel ?? opts.model)!] : [],
      reward: opts.rewardModel ? ['--reward-model', opts.rewardModel] : [],
      trainer: opts.runsDir ? ['--runs-dir', opts.runsDir] : [],
    };
    for (const name of SERVICE_NAMES) {
      const count = name === 'policy-sampler' ? opts.samplers : 1;
      for (let i = 0; i < count; i++) specs.push({ name, label: count > 1 ? `${name}-${i + 1}` : name, args: argsOf[name] });
    }
    const group = await startLocalServices(specs, {
      host: opts.host,
      startupTimeoutMs: opts.startupTimeoutMs,
      onLog: opts.logs ? (label, line) => io.stderr.write(`[${label}] ${line}\n`) : undefined,
    });
    const byName: Record<string, string[]> = {};
    for (const s of group.services) (byName[s.name] ??= []).push(s.address);
    if (opts.json) {
      io.stdout.write(JSON.stringify({ services: byName }) + '\n');
    } else {
      io.stdout.write('posttrain services are up (Ctrl-C to stop):\n');
      for (const s of [...group.services].sort((a, b) => a.label.localeCompare(b.label))) io.stdout.write(`  ${s.label.padEnd(18)} ${s.address.padEnd(22)} ${GRPC_NAMES[s.name]}  (pid ${s.pid})\n`);
      const first = group.services.find((s) => s.name === 'trainer')!;
      io.stdout.write(`\ntry: grpcurl -plaintext ${first.address} list\n     grpcurl -plaintext ${first.address} grpc.health.v1.Health/Check\n`);
    }
    const exited = new Promise<string>((resolve) => {
      group.onUnexpectedExit = (label, code, signal) => resolve(`${label} exited unexpectedly (${signal ?? `code ${code}`})`);
    });
    const why = await Promise.race([io.interrupted.then((s) => `received ${s}`), exited]);
    const failed = !why.startsWith('received');
    io.stderr.write(`posttrain up: ${why}; stopping the services\n`);
    await group.stop();
    return failed ? 1 : 0;
  },
};
