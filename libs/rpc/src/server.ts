import { Server, status, type Metadata, type MethodDefinition, type ServerDuplexStream, type ServerReadableStream, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import * as protoLoader from '@grpc/proto-loader';
import { Counter, Histogram, type Registry } from 'prom-client';
import { createLogger, createMetricsRegistry, extractContext, SpanKind, startMetricsServer, withSpan, type Logger, type MetricsServer } from '@posttrain/telemetry';
import { protoFiles, protosDir } from './protos';
import { invalidArgument, RpcError, statusName, toServiceError } from './errors';
import type { AnyServiceDefinition, CallContext, ServiceHandlers } from './handlers';
import { serverCredentials, type ServerTls } from './tls';

export interface ServerOptions {
  /** Short component name for logs and metrics, e.g. `policy-sampler`. */
  name: string;
  host: string;
  /** 0 picks a free port; the bound one is returned by start(). */
  port: number;
  /** How long shutdown waits for calls in flight before cancelling them. */
  shutdownGraceMs: number;
  /** Serve Prometheus metrics on this port (0 = any free port); undefined = off. */
  metricsPort?: number;
  log?: Logger;
  /** TLS, and mutual TLS when it has a client CA; unset = plaintext. */
  tls?: ServerTls;
  /**
   * Also serve grpc.health.v1 alone, in plaintext, on this port (0 = any free
   * port); undefined = off. For probes that cannot speak TLS (the kubelet's
   * gRPC probes) when `tls` is set; it answers what the main port's health does.
   */
  healthPort?: number;
}

export interface StartedServer {
  /** `host:port` that clients dial. */
  address: string;
  port: number;
  metricsPort?: number;
  healthPort?: number;
}

function metadataCarrier(md: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) if (typeof v === 'string') out[k] = v;
  return out;
}

/**
 * A request message that did not decode. grpc-js answers a throwing
 * deserializer with INTERNAL "Error deserializing request"; the wrapped
 * deserializer returns this instead, and the handler wrapper answers
 * INVALID_ARGUMENT: the caller sent it, nothing broke here. The common case
 * is a 64-bit integer >= 2^53, which JavaScript numbers cannot hold exactly.
 */
class UndecodableRequest {
  constructor(readonly reason: string) {}
  toError(method: string): RpcError {
    const hint = /MAX_SAFE_INTEGER|MIN_SAFE_INTEGER/.test(this.reason) ? ': a 64-bit integer field is outside +-(2^53 - 1), the range this server accepts' : `: ${this.reason.slice(0, 200)}`;
    return invalidArgument('request', `cannot be decoded as the request of ${method}${hint}`);
  }
}

function decodeOrMark(deserialize: (buf: Buffer) => unknown): (buf: Buffer) => unknown {
  return (buf) => {
    try {
      return deserialize(buf);
    } catch (err) {
      return new UndecodableRequest(err instanceof Error ? err.message : String(err));
    }
  };
}

/** Async iterable over a client stream, ending on 'end' and throwing on 'error' or an undecodable message. */
async function* readStream<T>(stream: NodeJS.ReadableStream & { on(ev: string, fn: (...a: unknown[]) => void): unknown }, method: string): AsyncIterable<T> {
  for await (const item of stream as AsyncIterable<T>) {
    if (item instanceof UndecodableRequest) throw item.toError(method);
    yield item;
  }
}

/**
 * A gRPC server with everything every posttrain service needs:
 * grpc.health.v1 (NOT_SERVING until the service says it is ready), server
 * reflection over the project's .proto files, a span per call parented on the
 * caller's `traceparent`, a structured log line per call, Prometheus
 * counters and latency histograms, handler errors mapped to status codes,
 * cancellation and deadlines surfaced as an AbortSignal, and graceful
 * shutdown (NOT_SERVING, drain within a time bound, then force).
 */
export class PosttrainServer {
  readonly log: Logger;
  readonly metrics: Registry;
  private readonly server = new Server({ 'grpc.max_receive_message_length': 8 * 1024 * 1024 });
  private readonly health: HealthImplementation;
  private readonly serviceNames: string[] = [];
  private readonly inflight = new Set<AbortController>();
  private readonly requests: Counter<'method' | 'code'>;
  private readonly latency: Histogram<'method'>;
  private metricsServer?: MetricsServer;
  private healthServer?: Server;
  private shuttingDown?: Promise<void>;
  private readonly shutdownHooks: (() => Promise<void> | void)[] = [];
  private started = false;

  constructor(private readonly options: ServerOptions) {
    this.log = options.log ?? createLogger({ service: options.name });
    this.metrics = createMetricsRegistry({ service: options.name });
    this.requests = new Counter({ name: 'posttrain_rpc_requests_total', help: 'RPCs handled, by method and status code', labelNames: ['method', 'code'], registers: [this.metrics] });
    this.latency = new Histogram({ name: 'posttrain_rpc_duration_seconds', help: 'RPC handling time', labelNames: ['method'], buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60], registers: [this.metrics] });
    this.health = new HealthImplementation({ '': 'NOT_SERVING' });
    this.health.addToServer(this.server);
    const reflectionDef = protoLoader.loadSync([...protoFiles(), healthProtoPath], { includeDirs: [protosDir()], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    new ReflectionService(reflectionDef).addToServer(this.server);
  }

  /** Registers a service; `serviceName` is its full name, e.g. `posttrain.v1.Trainer`. */
  add<D extends AnyServiceDefinition>(serviceName: string, definition: D, handlers: ServiceHandlers<D>): this {
    if (this.started) throw new Error(`cannot add ${serviceName} after start()`);
    const impl: UntypedServiceImplementation = {};
    const decoding: Record<string, MethodDefinition<unknown, unknown>> = {};
    for (const key of Object.keys(definition)) {
      const method = definition[key];
      decoding[key] = { ...method, requestDeserialize: decodeOrMark(method.requestDeserialize) };
      const handler = (handlers as Record<string, unknown>)[key];
      if (typeof handler !== 'function') throw new Error(`${serviceName}: no handler for method ${key}`);
      impl[key] = this.wrap(method, handler as (...args: unknown[]) => unknown) as UntypedServiceImplementation[string];
    }
    this.server.addService(decoding, impl);
    this.serviceNames.push(serviceName);
    this.health.setStatus(serviceName, 'NOT_SERVING');
    return this;
  }

  async start(): Promise<StartedServer> {
    const { host, port } = this.options;
    const bound = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${host}:${port}`, serverCredentials(this.options.tls), (err, p) => (err ? reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`)) : resolve(p))),
    );
    this.started = true;
    const result: StartedServer = { address: `${host.includes(':') ? `[${host}]` : host}:${bound}`, port: bound };
    if (this.options.metricsPort !== undefined) {
      this.metricsServer = await startMetricsServer(this.metrics, this.options.metricsPort, host);
      result.metricsPort = this.metricsServer.port;
    }
    if (this.options.healthPort !== undefined) {
      const healthPort = this.options.healthPort;
      const healthServer = new Server();
      this.health.addToServer(healthServer);
      result.healthPort = await new Promise<number>((resolve, reject) =>
        healthServer.bindAsync(`${host}:${healthPort}`, serverCredentials(undefined), (err, p) => (err ? reject(new Error(`cannot listen on ${host}:${healthPort} (health port): ${err.message}`)) : resolve(p))),
      );
      this.healthServer = healthServer;
    }
    const tls = this.options.tls ? (this.options.tls.clientCa ? 'mutual' : 'server') : 'off';
    this.log.lifecycle('listening', { event: 'listening', address: result.address, port: bound, metrics_port: result.metricsPort, health_port: result.healthPort, services: this.serviceNames, tls });
    return result;
  }

  /** Health of the whole server and each service: SERVING once the model (or whatever it needs) is ready. */
  setServing(serving: boolean): void {
    const s = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', s);
    for (const name of this.serviceNames) this.health.setStatus(name, s);
    this.log.info('health', { event: 'health', status: s });
  }

  /** Calls in flight right now. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Runs `hook` during shutdown, after the calls in flight are drained (e.g. to close a service's own HTTP server). */
  onShutdown(hook: () => Promise<void> | void): void {
    this.shutdownHooks.push(hook);
  }

  /**
   * NOT_SERVING at once (so load balancers stop sending), then wait for calls
   * in flight up to the grace period, then cancel what is left.
   */
  shutdown(reason = 'shutdown'): Promise<void> {
    if (this.shuttingDown) return this.shuttingDown;
    this.shuttingDown = (async () => {
      this.log.info('shutting down', { event: 'shutdown', reason, inflight: this.inflight.size, grace_ms: this.options.shutdownGraceMs });
      this.setServing(false);
      const drained = new Promise<boolean>((resolve) => this.server.tryShutdown(() => resolve(true)));
      const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), this.options.shutdownGraceMs).unref());
      const clean = await Promise.race([drained, timedOut]);
      if (!clean) {
        this.log.warn('grace period over, cancelling calls in flight', { event: 'shutdown_forced', inflight: this.inflight.size });
        for (const c of this.inflight) c.abort(new RpcError(status.UNAVAILABLE, 'server is shutting down'));
        this.server.forceShutdown();
      }
      await this.metricsServer?.close();
      this.healthServer?.forceShutdown();
      for (const hook of this.shutdownHooks) {
        try {
          await hook();
        } catch (err) {
          this.log.warn('a shutdown hook failed', { err });
        }
      }
      this.log.info('stopped', { event: 'stopped', forced: !clean });
    })();
    return this.shuttingDown;
  }

  /** SIGTERM / SIGINT start a graceful shutdown; a second signal exits at once. */
  handleSignals(onStopped: () => void = () => process.exit(0)): void {
    let count = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      count++;
      if (count > 1) {
        this.log.warn('second signal, exiting now', { signal: sig });
        process.exit(1);
      }
      void this.shutdown(sig).then(onStopped);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  private wrap(method: MethodDefinition<unknown, unknown>, handler: (...args: unknown[]) => unknown) {
    const path = method.path;
    const short = path.split('/').pop() ?? path;
    type AnyCall = ServerUnaryCall<unknown, unknown> & Partial<ServerWritableStream<unknown, unknown>>;

    const begin = (call: AnyCall) => {
      const controller = new AbortController();
      this.inflight.add(controller);
      const deadlineRaw = call.getDeadline();
      const deadline = deadlineRaw instanceof Date ? deadlineRaw : Number.isFinite(deadlineRaw) ? new Date(deadlineRaw as number) : undefined;
      let timer: NodeJS.Timeout | undefined;
      if (deadline) {
        const ms = deadline.getTime() - Date.now();
        timer = setTimeout(() => controller.abort(new RpcError(status.DEADLINE_EXCEEDED, `deadline exceeded for ${short}`)), Math.max(0, ms));
        timer.unref();
      }
      call.on('cancelled', () => controller.abort(new RpcError(status.CANCELLED, `${short} cancelled by the client`)));
      const started = process.hrtime.bigint();
      const finish = (code: number, err?: unknown) => {
        if (timer) clearTimeout(timer);
        this.inflight.delete(controller);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.requests.inc({ method: short, code: statusName(code) });
        this.latency.observe({ method: short }, seconds);
        const fields = { event: 'rpc', method: path, code: statusName(code), ms: Math.round(seconds * 1000 * 10) / 10, peer: call.getPeer() };
        if (code === status.OK) this.log.debug('rpc', fields);
        else if (code === status.INTERNAL || code === status.UNKNOWN) this.log.error('rpc failed', { ...fields, err });
        else this.log.info('rpc', { ...fields, error: err instanceof Error ? err.message : undefined });
      };
      return { controller, deadline, finish };
    };

    const run = async (call: AnyCall, body: (ctx: CallContext) => Promise<void>) => {
      const { controller, deadline, finish } = begin(call);
      const parent = extractContext(metadataCarrier(call.metadata));
      try {
        await withSpan(
          path.slice(1),
          async (span) => {
            span.setAttribute('rpc.system', 'grpc');
            span.setAttribute('rpc.method', short);
            const ctx: CallContext = { method: path, metadata: call.metadata, deadline, signal: controller.signal, log: this.log.child({ method: short }), span };
            await body(ctx);
          },
          { kind: SpanKind.SERVER, parent },
        );
        finish(status.OK);
      } catch (err) {
        const serviceErr = controller.signal.aborted && !(err instanceof RpcError) ? toServiceError(controller.signal.reason) : toServiceError(err);
        finish(serviceErr.code, err);
        throw serviceErr;
      }
    };

    if (!method.requestStream && !method.responseStream) {
      return (call: ServerUnaryCall<unknown, unknown>, callback: (err: unknown, res?: unknown) => void) => {
        let result: unknown;
        run(call as AnyCall, async (ctx) => {
          if (call.request instanceof UndecodableRequest) throw call.request.toError(short);
          result = await handler(call.request, ctx);
        }).then(
          () => callback(null, result),
          (err) => callback(err),
        );
      };
    }
    if (!method.requestStream && method.responseStream) {
      return (call: ServerWritableStream<unknown, unknown>) => {
        run(call as unknown as AnyCall, async (ctx) => {
          if (call.request instanceof UndecodableRequest) throw call.request.toError(short);
          for await (const item of handler(call.request, ctx) as AsyncIterable<unknown>) {
            if (ctx.signal.aborted) throw ctx.signal.reason;
            if (!call.write(item)) await new Promise((resolve) => call.once('drain', resolve));
          }
        }).then(
          () => call.end(),
          (err) => call.emit('error', err),
        );
      };
    }
    if (method.requestStream && !method.responseStream) {
      return (call: ServerReadableStream<unknown, unknown>, callback: (err: unknown, res?: unknown) => void) => {
        let result: unknown;
        run(call as unknown as AnyCall, async (ctx) => {
          result = await handler(readStream(call, short), ctx);
        }).then(
          () => callback(null, result),
          (err) => callback(err),
        );
      };
    }
    return (call: ServerDuplexStream<unknown, unknown>) => {
      run(call as unknown as AnyCall, async (ctx) => {
        for await (const item of handler(readStream(call, short), ctx) as AsyncIterable<unknown>) {
          if (!call.write(item)) await new Promise((resolve) => call.once('drain', resolve));
        }
      }).then(
        () => call.end(),
        (err) => call.emit('error', err),
      );
    };
  }
}
