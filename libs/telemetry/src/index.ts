/**
 * @posttrain/telemetry: structured JSON logs, OpenTelemetry tracing and
 * Prometheus metrics, shared by every service and the CLI; and a training
 * run's artifacts: metrics.jsonl, TensorBoard event files (own writer, no
 * libtensorflow) and report.html (uPlot inlined, works offline).
 *
 * @example
 * ```ts
 * import { createLogger, startTracing, withSpan, TensorBoardWriter, writeRunReport } from '@posttrain/telemetry';
 * startTracing({ serviceName: 'posttrain-reward' });
 * const log = createLogger({ service: 'reward' });
 * await withSpan('score', async () => log.info('scored', { n: 8 }));
 *
 * const tb = new TensorBoardWriter('runs/sft-1');
 * tb.scalars(10, { 'train/loss': 2.31 });
 * writeRunReport('runs/sft-1', { title: 'sft-1' }); // reads runs/sft-1/metrics.jsonl
 * ```
 */
export { createLogger, parseLogLevel, LOG_LEVELS } from './logger';
export type { Logger, LogFields, LogLevel, LoggerOptions } from './logger';
export { startTracing, startTracingIfExported, tracesExportConfigured, getTracer, injectContext, extractContext, withSpan, SpanKind, SpanStatusCode } from './tracing';
export type { Tracing, TracingOptions, Span, Context } from './tracing';
export { createMetricsRegistry, startMetricsServer } from './metrics-server';
export type { MetricsServer } from './metrics-server';
export { startTrainMetricsServer, registerTrainGauges, TRAIN_GAUGES } from './train-metrics';
export type { TrainMetricsServer, TrainGauges } from './train-metrics';
export { crc32c, maskedCrc32c } from './crc32c';
export { TensorBoardWriter, encodeScalarEvent, encodeFileVersionEvent, frameTfRecord } from './tensorboard-writer';
export type { TensorBoardWriterOptions } from './tensorboard-writer';
export { JsonlMetricsSink, TensorBoardMetricsSink, fanOutMetricsSinks, readMetricsJsonl, truncateMetricsJsonl } from './metrics-sink';
export type { MetricsRecord, MetricsSink } from './metrics-sink';
export { renderRunReport, writeRunReport, summariseMetrics, metricSeries, loadUplot, escapeHtml, scriptJson } from './run-report';
export type { RunReportInput, MetricSummary } from './run-report';
