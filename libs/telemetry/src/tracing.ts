import { context, propagation, trace, type Context, type Span, SpanKind, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { NoopSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace';

export interface TracingOptions {
  serviceName: string;
  /**
   * Span processors to install. When omitted, spans are exported over OTLP if
   * `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_TRACES_EXPORTER` is set, and are
   * recorded but not exported otherwise (so trace ids still reach the logs).
   */
  spanProcessors?: SpanProcessor[];
}

export interface Tracing {
  tracer: Tracer;
  shutdown(): Promise<void>;
}

let active: { sdk: NodeSDK; tracing: Tracing } | undefined;

/**
 * Starts the OpenTelemetry NodeSDK for this process, once. Auto-instrumentation
 * is not used (it is unreliable for grpc-js under tsx/ESM loaders); trace
 * context crosses gRPC hops through the `traceparent` metadata that
 * libs/rpc injects and extracts by hand with the W3C propagator set here.
 */
export function startTracing(options: TracingOptions): Tracing {
  if (active) return active.tracing;
  const exportConfigured = tracesExportConfigured();
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    instrumentations: [],
    textMapPropagator: new W3CTraceContextPropagator(),
    ...(options.spanProcessors
      ? { spanProcessors: options.spanProcessors }
      : exportConfigured
        ? {}
        : { spanProcessors: [new NoopSpanProcessor()] }),
  });
  sdk.start();
  const tracing: Tracing = {
    tracer: trace.getTracer('posttrain', '0.1.0'),
    shutdown: async () => {
      if (active?.sdk === sdk) active = undefined;
      await sdk.shutdown();
    },
  };
  active = { sdk, tracing };
  return tracing;
}

/** Whether the environment names somewhere to export spans (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER). */
export function tracesExportConfigured(env: Record<string, string | undefined> = process.env): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_TRACES_EXPORTER);
}

/**
 * For processes that are not services (a CLI run, the Trainer's run worker):
 * starts tracing only when spans would be exported, so each RL step's span
 * and the calls below it reach the collector. Shut it down before exiting,
 * or the last batch of spans is lost.
 */
export function startTracingIfExported(serviceName: string): Tracing | undefined {
  return tracesExportConfigured() ? startTracing({ serviceName }) : undefined;
}

/** The tracer used by every posttrain component (a no-op until startTracing). */
export function getTracer(): Tracer {
  return trace.getTracer('posttrain', '0.1.0');
}

/** Writes the current trace context into a string carrier (e.g. gRPC metadata). */
export function injectContext(carrier: Record<string, string>, ctx: Context = context.active()): void {
  propagation.inject(ctx, carrier);
}

/** Reads a trace context from a string carrier. */
export function extractContext(carrier: Record<string, string | undefined>): Context {
  return propagation.extract(context.active(), carrier);
}

/**
 * Runs `fn` inside a new span, ending it and recording any thrown error.
 * The span is the active one while `fn` runs.
 */
export async function withSpan<T>(
  name: string,
  fn: (span: Span) => Promise<T>,
  options: { kind?: SpanKind; parent?: Context; attributes?: Record<string, string | number | boolean> } = {},
): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = getTracer().startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
    throw err;
  } finally {
    span.end();
  }
}

export { SpanKind, SpanStatusCode };
export type { Span, Context };
