import { createServer } from 'node:net';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import type { Command } from '../command';
import { startLocalServices, type LocalServiceSpec, type ServiceEvent } from '../local-services';
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
  dashboardPort: { kind: 'int', flag: 'dashboard-port', description: "the trainer's live run dashboard (HTTP) port; 0 = a free port, picked once and kept across restarts", default: 0, min: 0, max: 65535 },
  startupTimeoutMs: { kind: 'int', flag: 'startup-timeout-ms', description: 'how long to wait for every service to be SERVING', default: 120_000, min: 1 },
  maxRestarts: { kind: 'int', flag: 'max-restarts', description: 'restarts per replica that dies (on its port); past them it stays down and the others keep running', default: 5, min: 0 },
  restartBackoffMs: { kind: 'int', flag: 'restart-backoff-ms', description: 'wait before the first restart of a replica, doubled for each further one (at most 30 s)', default: 1_000, min: 0, max: 30_000 },
});

const GRPC_NAMES: Record<string, string> = {
  'policy-sampler': 'posttrain.v1.PolicySampler',
  reference: 'posttrain.v1.ReferenceModel',
  reward: 'posttrain.v1.RewardScorer',
  trainer: 'posttrain.v1.Trainer',
};

/** One stderr line per replica event. */
export function describeServiceEvent(e: ServiceEvent): string {
  switch (e.kind) {
    case 'exited':
      return `${e.label} exited unexpectedly (${e.signal ?? `code ${e.code}`})`;
    case 'restarting':
      return `restarting ${e.label} on ${e.address} in ${(e.inMs / 1000).toFixed(1)} s (restart ${e.attempt} of ${e.maxRestarts})`;
    case 'restarted':
      return `${e.label} is back on ${e.address} (pid ${e.pid})`;
    case 'restart-failed':
      return `restart ${e.attempt} of ${e.label} failed: ${e.error}`;
    case 'gave-up':
      return `${e.label} died after ${e.restarts} restart(s); leaving it down, the other services keep running`;
  }
}

/** A port free on `host` now (the OS picks it), for a child that must keep it across restarts. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/**
 * `posttrain up`: the four services on loopback, real gRPC, each its own
 * process, until Ctrl-C (which drains them gracefully). A replica that dies
 * is restarted on its port; the others are not touched.
 */
export const upCommand: Command = {
  name: 'up',
  summary: 'start the four services on loopback and print their addresses',
  help: () => `usage: posttrain up [options]\n\nStarts policy-sampler (x --samplers), reference, reward and trainer as separate processes on free\nports (without --model the sampler and reference serve no model and answer FAILED_PRECONDITION), waits until each answers SERVING on grpc.health.v1, prints the addresses and the trainer's dashboard (a web page of its runs' live curves\nand the services' health), and runs until\nCtrl-C or SIGTERM, which shut them down gracefully. A service that dies is restarted on the same port\n(with backoff, at most --max-restarts times); the others keep running.\n\nOptions:\n${describeConfig(options)}\n`,
  run: async (argv, io) => {
    const opts = parseConfig(options, { argv });
    const specs: LocalServiceSpec[] = [];
    const dashboardPort = opts.dashboardPort || (await freePort(opts.host));
    const argsOf: Record<string, string[]> = {
      'policy-sampler': opts.model ? ['--model', opts.model] : [],
      reference: opts.referenceModel ?? opts.model ? ['--model', (opts.referenceModel ?? opts.model)!] : [],
      reward: opts.rewardModel ? ['--reward-model', opts.rewardModel] : [],
      trainer: opts.runsDir ? ['--runs-dir', opts.runsDir] : [],
    };
    for (const name of SERVICE_NAMES) {
      const count = name === 'policy-sampler' ? opts.samplers : 1;
      if (name !== 'trainer') for (let i = 0; i < count; i++) specs.push({ name, label: count > 1 ? `${name}-${i + 1}` : name, args: argsOf[name] });
    }
    // The serving services first: the trainer is given their addresses (its defaults for PPO/GRPO specs naming none, and its dashboard's health panel).
    const group = await startLocalServices(specs, {
      host: opts.host,
      startupTimeoutMs: opts.startupTimeoutMs,
      onLog: opts.logs ? (label, line) => io.stderr.write(`[${label}] ${line}\n`) : undefined,
      restart: { maxRestarts: opts.maxRestarts, initialBackoffMs: opts.restartBackoffMs, maxBackoffMs: 30_000 },
      onEvent: (e) => io.stderr.write(`posttrain up: ${describeServiceEvent(e)}\n`),
    });
    const addressesOf = (name: string) => group.services.filter((s) => s.name === name).map((s) => s.address);
    try {
      await group.start({ name: 'trainer', label: 'trainer', args: [...argsOf.trainer, '--sampler-addresses', addressesOf('policy-sampler').join(','), '--reference-address', addressesOf('reference')[0], '--reward-address', addressesOf('reward')[0], '--dashboard-port', String(dashboardPort)] });
    } catch (err) {
      await group.stop();
      throw err;
    }
    const dashboard = group.services.find((s) => s.name === 'trainer')?.dashboardUrl;
    const byName: Record<string, string[]> = {};
    for (const s of group.services) (byName[s.name] ??= []).push(s.address);
    if (opts.json) {
      io.stdout.write(JSON.stringify({ services: byName, processes: group.services.map((s) => ({ label: s.label, address: s.address, pid: s.pid })), dashboard }) + '\n');
    } else {
      io.stdout.write('posttrain services are up (Ctrl-C to stop):\n');
      for (const s of [...group.services].sort((a, b) => a.label.localeCompare(b.label))) io.stdout.write(`  ${s.label.padEnd(18)} ${s.address.padEnd(22)} ${GRPC_NAMES[s.name]}  (pid ${s.pid})\n`);
      if (dashboard) io.stdout.write(`  ${'dashboard'.padEnd(18)} ${dashboard}  (runs, live curves, service health)\n`);
      const first = group.services.find((s) => s.name === 'trainer')!;
      io.stdout.write(`\ntry: grpcurl -plaintext ${first.address} list\n     grpcurl -plaintext ${first.address} grpc.health.v1.Health/Check\n`);
    }
    const signal = await io.interrupted;
    io.stderr.write(`posttrain up: received ${signal}; stopping the services\n`);
    await group.stop();
    return 0;
  },
};
