import { Client, Metadata, status, type CallOptions, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { context, trace } from '@opentelemetry/api';
import { getTracer, injectContext, SpanKind, SpanStatusCode } from '@posttrain/telemetry';
import type { AnyMethod, AnyServiceDefinition, RequestOf, ResponseOf } from './handlers';
import { channelCredentials, clientTlsFromEnv, type ClientTls } from './tls';

export interface ClientOptions {
  /** Default deadline of each call, across all its attempts (ms). */
  deadlineMs?: number;
  /** Attempts per call, the first included; only UNAVAILABLE is retried. */
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Keep retrying UNAVAILABLE (with backoff) until this long after the call
   * began, whatever maxAttempts says: a pod that restarts takes seconds, and
   * its callers should wait for it rather than fail. Each attempt then has
   * its own deadline of `deadlineMs`, so a call takes at most about
   * retryWindowMs + deadlineMs. Unset: maxAttempts within one deadline.
   */
  retryWindowMs?: number;
  /** Names the service in error messages, e.g. `reward service`; default the gRPC service name. */
  serviceLabel?: string;
  /** TLS (and mutual TLS); default from POSTTRAIN_TLS_CA / _CLIENT_CERT / _CLIENT_KEY, else plaintext. `false`: plaintext whatever the environment says. */
  tls?: ClientTls | false;
  /** Extra grpc-js channel options. */
  channelOptions?: Record<string, string | number>;
}

export interface PerCallOptions {
  /** Overrides the client's default deadline for this call (ms from now). */
  deadlineMs?: number;
  /** Aborting cancels the call. */
  signal?: AbortSignal;
  metadata?: Metadata;
}

type UnaryKeys<D> = { [K in keyof D]: D[K] extends AnyMethod ? (D[K]['requestStream'] extends true ? never : D[K]['responseStream'] extends true ? never : K) : never }[keyof D];
type ServerStreamKeys<D> = { [K in keyof D]: D[K] extends AnyMethod ? (D[K]['requestStream'] extends true ? never : D[K]['responseStream'] extends true ? K : never) : never }[keyof D];
type ClientStreamKeys<D> = { [K in keyof D]: D[K] extends AnyMethod ? (D[K]['requestStream'] extends true ? (D[K]['responseStream'] extends true ? never : K) : never) : never }[keyof D];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Normalises an address for grpc-js: `host:port` stays as is, and a bare
 * hostname with a port is dialled through DNS so that a Kubernetes headless
 * Service's several A records are balanced call by call (round_robin).
 */
function target(address: string): string {
  if (/^[a-z]+:/.test(address) && !/^[^:/]+:\d+$/.test(address)) return address; // already has a scheme (dns:///, ipv4:, unix:)
  if (/^(\d+\.){3}\d+:\d+$/.test(address) || address.startsWith('[') || address.startsWith('localhost:')) return address;
  return `dns:///${address}`;
}

/**
 * A typed client over one or more replicas of a service. Calls rotate
 * round-robin across the addresses; a call that fails with UNAVAILABLE is
 * retried on the next replica with exponential backoff and jitter, within the
 * call's deadline; every other status is returned at once. Each call carries
 * a deadline and the caller's trace context (`traceparent`).
 *
 * @example
 * const sampler = createClient(PolicySamplerService, ['127.0.0.1:50051', '127.0.0.1:50061']);
 * const info = await sampler.unary('getInfo', {});
 */
/**
 * Cancels a call when `signal` aborts; returns the function that removes the
 * listener again, called when the call settles, so a long-lived signal (a
 * whole run's) does not collect one listener per call.
 */
function onAbort(signal: AbortSignal | undefined, cancel: () => void): () => void {
  if (!signal) return () => undefined;
  signal.addEventListener('abort', cancel, { once: true });
  return () => signal.removeEventListener('abort', cancel);
}

export class RpcClient<D extends AnyServiceDefinition> {
  private readonly clients: Client[];
  private next = 0;
  private readonly opts: Required<Omit<ClientOptions, 'channelOptions' | 'retryWindowMs' | 'tls'>> & Pick<ClientOptions, 'retryWindowMs'>;

  constructor(
    private readonly definition: D,
    readonly addresses: readonly string[],
    options: ClientOptions = {},
  ) {
    if (addresses.length === 0) throw new Error('createClient: at least one address is needed');
    const channelOptions = {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
      'grpc.enable_retries': 0,
      ...options.channelOptions,
    };
    const creds = channelCredentials(options.tls === false ? undefined : (options.tls ?? clientTlsFromEnv()));
    this.clients = addresses.map((a) => new Client(target(a), creds, channelOptions));
    const firstPath = Object.values(definition)[0]?.path ?? '';
    this.opts = {
      deadlineMs: options.deadlineMs ?? 30_000,
      maxAttempts: options.maxAttempts ?? 4,
      initialBackoffMs: options.initialBackoffMs ?? 100,
      maxBackoffMs: options.maxBackoffMs ?? 2_000,
      retryWindowMs: options.retryWindowMs,
      serviceLabel: options.serviceLabel ?? (firstPath.split('/')[1] || 'service'),
    };
    if (this.opts.retryWindowMs !== undefined && !(this.opts.retryWindowMs >= 0)) throw new Error(`retryWindowMs: got ${this.opts.retryWindowMs}, expected a number of milliseconds >= 0`);
  }

  /** Prefixes a failed call's message (not its details) with the service and the replica's address, once. */
  private nameError(err: unknown, index: number): void {
    const e = err as Partial<ServiceError>;
    if (typeof e?.message !== 'string' || typeof e.code !== 'number') return;
    const prefix = `${this.opts.serviceLabel} at ${this.addresses[index]}: `;
    if (!e.message.startsWith(prefix)) (e as Error).message = prefix + e.message;
  }

  private pick(): { client: Client; index: number } {
    const index = this.next++ % this.clients.length;
    return { client: this.clients[index], index };
  }

  private method(name: keyof D): AnyMethod {
    const m = this.definition[name];
    if (!m) throw new Error(`unknown method ${String(name)}`);
    return m;
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.opts.maxBackoffMs, this.opts.initialBackoffMs * 2 ** (attempt - 1));
    return base / 2 + Math.random() * (base / 2);
  }

  /**
   * Runs `attemptFn` against successive replicas until it succeeds, fails
   * with a status other than UNAVAILABLE, runs out of attempts, or the
   * deadline passes. `canRetry` lets a stream refuse once it has delivered data.
   */
  private async withRetries<T>(name: string, per: PerCallOptions, attemptFn: (client: Client, callOpts: CallOptions, md: Metadata, index: number) => Promise<T>, canRetry: () => boolean = () => true): Promise<T> {
    const began = Date.now();
    const perAttemptMs = per.deadlineMs ?? this.opts.deadlineMs;
    const window = this.opts.retryWindowMs;
    // Without a retry window the deadline covers every attempt; with one, each attempt has its own.
    let deadline = began + perAttemptMs;
    const span = getTracer().startSpan(name, { kind: SpanKind.CLIENT, attributes: { 'rpc.system': 'grpc' } });
    const ctx = trace.setSpan(context.active(), span);
    try {
      for (let attempt = 1; ; attempt++) {
        const { client, index } = this.pick();
        const md = per.metadata?.clone() ?? new Metadata();
        const carrier: Record<string, string> = {};
        injectContext(carrier, ctx);
        for (const [k, v] of Object.entries(carrier)) md.set(k, v);
        if (window !== undefined && attempt > 1) deadline = Date.now() + perAttemptMs;
        try {
          const result = await context.with(ctx, () => attemptFn(client, { deadline }, md, index));
          span.setAttribute('rpc.attempts', attempt);
          return result;
        } catch (err) {
          const e = err as ServiceError;
          const wait = this.backoff(attempt);
          const inBudget = window !== undefined ? Date.now() + wait < began + window : attempt < this.opts.maxAttempts && Date.now() + wait < deadline;
          const retryable = e.code === status.UNAVAILABLE && inBudget && canRetry() && !per.signal?.aborted;
          if (!retryable) {
            if (e.code === status.UNAVAILABLE && window !== undefined && canRetry()) (e as Error).message += ` (still UNAVAILABLE after ${attempt} attempt(s) over ${Date.now() - began} ms; retry window ${window} ms)`;
            this.nameError(err, index);
            span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
            throw err;
          }
          span.addEvent('retry', { attempt, replica: this.addresses[index], code: e.code });
          await sleep(wait);
        }
      }
    } finally {
      span.end();
    }
  }

  /** A unary call. */
  unary<K extends UnaryKeys<D> & string>(name: K, request: RequestOf<D[K]>, per: PerCallOptions = {}): Promise<ResponseOf<D[K]>> {
    const m = this.method(name);
    return this.withRetries(m.path, per, (client, callOpts, md) =>
      new Promise((resolve, reject) => {
        let detach = (): void => undefined;
        const call = client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, request, md, callOpts, (err, res) => {
          detach();
          if (err) reject(err);
          else resolve(res as ResponseOf<D[K]>);
        });
        detach = onAbort(per.signal, () => call.cancel());
      }),
    );
  }

  /** A client-streaming call; the requests are replayed on a retry, so pass an array (or a re-iterable). */
  clientStream<K extends ClientStreamKeys<D> & string>(name: K, requests: Iterable<RequestOf<D[K]>> | AsyncIterable<RequestOf<D[K]>>, per: PerCallOptions = {}): Promise<ResponseOf<D[K]>> {
    const m = this.method(name);
    const replayable = Array.isArray(requests);
    let started = false;
    return this.withRetries(
      m.path,
      per,
      (client, callOpts, md) =>
        new Promise((resolve, reject) => {
          started = true;
          let detach = (): void => undefined;
          const call = client.makeClientStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, md, callOpts, (err, res) => {
            detach();
            if (err) reject(err);
            else resolve(res as ResponseOf<D[K]>);
          });
          detach = onAbort(per.signal, () => call.cancel());
          (async () => {
            for await (const r of requests as AsyncIterable<RequestOf<D[K]>>) {
              if (!call.write(r)) await new Promise((res) => call.once('drain', res));
            }
            call.end();
          })().catch((err) => {
            call.cancel();
            reject(err);
          });
        }),
      () => replayable || !started,
    );
  }

  /**
   * A server-streaming call as an async iterable. It is retried on another
   * replica only if UNAVAILABLE came before the first message.
   */
  async *serverStream<K extends ServerStreamKeys<D> & string>(name: K, request: RequestOf<D[K]>, per: PerCallOptions = {}): AsyncIterable<ResponseOf<D[K]>> {
    const m = this.method(name);
    let received = false;
    let stream!: ClientReadableStream<ResponseOf<D[K]>>;
    let detach = (): void => undefined;
    let replica = 0;
    const iterator = await this.withRetries(
      m.path,
      per,
      async (client, callOpts, md, index) => {
        replica = index;
        stream = client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, request, md, callOpts);
        detach();
        detach = onAbort(per.signal, () => stream.cancel());
        const it = (stream as AsyncIterable<ResponseOf<D[K]>>)[Symbol.asyncIterator]();
        const first = await it.next();
        received = !first.done;
        return { it, first };
      },
      () => !received,
    );
    try {
      if (iterator.first.done) return;
      yield iterator.first.value;
      for (;;) {
        const r = await iterator.it.next().catch((err: unknown) => {
          this.nameError(err, replica);
          throw err;
        });
        if (r.done) return;
        yield r.value;
      }
    } finally {
      detach();
      stream.cancel();
    }
  }

  /** Closes every channel. */
  close(): void {
    for (const c of this.clients) c.close();
  }
}

/** Creates a typed client for `definition` over one or more replica addresses. */
export function createClient<D extends AnyServiceDefinition>(definition: D, addresses: string | readonly string[], options?: ClientOptions): RpcClient<D> {
  const list = typeof addresses === 'string' ? addresses.split(',').map((s) => s.trim()).filter(Boolean) : addresses;
  return new RpcClient(definition, list, options);
}
