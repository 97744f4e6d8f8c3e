import { hostname } from 'node:os';
import { createLogger, parseLogLevel, startTracing, type Logger } from '@posttrain/telemetry';
import { ConfigError, defineConfig, describeConfig, parseConfig, type ConfigSchema } from '@posttrain/flags';
import { PosttrainServer, type StartedServer } from './server';
import { loadServerTls } from './tls';

/** Options every service takes, as flags or POSTTRAIN_* environment variables. */
export function commonServiceConfig(defaultPort: number) {
  return defineConfig({
    host: { kind: 'string', flag: 'host', env: 'POSTTRAIN_HOST', description: 'address to listen on (0.0.0.0 in containers)', default: '127.0.0.1' },
    port: { kind: 'int', flag: 'port', env: 'POSTTRAIN_PORT', description: 'gRPC port; 0 picks a free one', default: defaultPort, min: 0, max: 65535 },
    metricsPort: { kind: 'int', flag: 'metrics-port', env: 'POSTTRAIN_METRICS_PORT', description: 'Prometheus /metrics port; unset = off, 0 = any free port', min: 0, max: 65535 },
    shutdownGraceMs: { kind: 'int', flag: 'shutdown-grace-ms', env: 'POSTTRAIN_SHUTDOWN_GRACE_MS', description: 'how long SIGTERM waits for calls in flight before cancelling them', default: 10_000, min: 0 },
    tlsCert: { kind: 'string', flag: 'tls-cert', env: 'POSTTRAIN_TLS_CERT', description: 'server certificate (PEM); with --tls-key turns TLS on' },
    tlsKey: { kind: 'string', flag: 'tls-key', env: 'POSTTRAIN_TLS_KEY', description: 'private key of --tls-cert (PEM)' },
    tlsClientCa: { kind: 'string', flag: 'tls-client-ca', env: 'POSTTRAIN_TLS_CLIENT_CA', description: 'CA (PEM) that client certificates must chain to: mutual TLS, clients without one are refused' },
    healthPort: { kind: 'int', flag: 'health-port', env: 'POSTTRAIN_HEALTH_PORT', description: 'also serve grpc.health.v1 alone in plaintext on this port, for probes that cannot speak TLS (the kubelet\'s); unset = off', min: 0, max: 65535 },
    logLevel: { kind: 'string', flag: 'log-level', env: 'POSTTRAIN_LOG_LEVEL', description: 'debug, info, warn, error or silent', default: 'info', choices: ['debug', 'info', 'warn', 'error', 'silent'] },
  });
}

export type CommonServiceConfig = { host: string; port: number; metricsPort?: number; shutdownGraceMs: number; logLevel: string; tlsCert?: string; tlsKey?: string; tlsClientCa?: string; healthPort?: number };

export interface ServiceDefinitionOptions<S extends ConfigSchema> {
  /** Short name: `policy-sampler`, `reference`, `reward`, `trainer`. */
  name: string;
  /** One line for --help. */
  summary: string;
  defaultPort: number;
  /** The service's own options. */
  config: S;
  /**
   * Registers the service's handlers and prepares what it needs. Resolve when
   * the service can answer; health turns SERVING then. Long loading may also
   * call `server.setServing(true)` itself later and return early.
   */
  setup: (ctx: ServiceSetupContext<S>) => Promise<{ ready: Promise<void> } | void>;
}

/** What a service's setup is given. */
export interface ServiceSetupContext<S extends ConfigSchema> {
  server: PosttrainServer;
  config: ReturnType<typeof parseConfig<S>> & CommonServiceConfig;
  log: Logger;
  /** This replica's id, `<hostname>:<pid>`, which the service reports to callers. */
  replicaId: string;
}

export interface RunningService {
  server: PosttrainServer;
  started: StartedServer;
}

/**
 * The whole life of a service process: parse and validate configuration
 * (flags over environment over defaults), start tracing, register handlers,
 * listen, turn SERVING when ready, and shut down gracefully on SIGTERM.
 */
export async function runService<S extends ConfigSchema>(def: ServiceDefinitionOptions<S>, argv: readonly string[], env: Record<string, string | undefined> = process.env): Promise<RunningService> {
  const schema = { ...commonServiceConfig(def.defaultPort), ...def.config };
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`posttrain ${def.name}: ${def.summary}\n\nOptions:\n${describeConfig(schema)}\n`);
    process.exit(0);
  }
  const config = parseConfig(schema, { argv, env }) as ReturnType<typeof parseConfig<S>> & CommonServiceConfig;
  const log = createLogger({ service: def.name, level: parseLogLevel(config.logLevel) });
  startTracing({ serviceName: `posttrain-${def.name}` });
  const tls = loadServerTls({ cert: config.tlsCert, key: config.tlsKey, clientCa: config.tlsClientCa });
  const server = new PosttrainServer({ name: def.name, host: config.host, port: config.port, metricsPort: config.metricsPort, shutdownGraceMs: config.shutdownGraceMs, log, tls, healthPort: config.healthPort });
  const prepared = await def.setup({ server, config, log, replicaId: `${hostname()}:${process.pid}` });
  const started = await server.start();
  server.handleSignals();
  const ready = prepared && 'ready' in prepared ? prepared.ready : Promise.resolve();
  ready.then(
    () => server.setServing(true),
    (err: Error) => {
      log.error('service failed to become ready', { err });
      void server.shutdown('startup failure').then(() => process.exit(1));
    },
  );
  return { server, started };
}

/** Entry-point wrapper: configuration errors print one clear line and exit 2. */
export function mainOf<S extends ConfigSchema>(def: ServiceDefinitionOptions<S>): void {
  runService(def, process.argv.slice(2)).catch((err: Error) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`posttrain ${def.name}: ${err.message}\n(run with --help for the options)\n`);
      process.exit(2);
    }
    process.stderr.write(`posttrain ${def.name}: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
