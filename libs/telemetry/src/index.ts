/**
 * @posttrain/telemetry: structured JSON logs, OpenTelemetry tracing and
 * Prometheus metrics, shared by every service and the CLI.
 *
 * @example
 * ```ts
 * import { createLogger, startTracing, withSpan } from '@posttrain/telemetry';
 * startTracing({ serviceName: 'posttrain-reward' });
 * const log = createLogger({ service: 'reward' });
 * await withSpan('score', async () => log.info('scored', { n: 8 }));
 * ```
 */
export { createLogger, parseLogLevel, LOG_LEVELS } from './logger';
export type { Logger, LogFields, LogLevel, LoggerOptions } from './logger';
export { startTracing, getTracer, injectContext, extractContext, withSpan, SpanKind, SpanStatusCode } from './tracing';
export type { Tracing, TracingOptions, Span, Context } from './tracing';
export { createMetricsRegistry, startMetricsServer } from './metrics-server';
export type { MetricsServer } from './metrics-server';
