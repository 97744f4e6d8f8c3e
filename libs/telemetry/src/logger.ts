import { trace } from '@opentelemetry/api';

/** Severity levels in increasing order; a logger drops records below its level. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /**
   * A lifecycle record (listening, ready, stopped) that other processes read:
   * written at level info whatever the threshold, unless the logger is silent.
   */
  lifecycle(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every record it writes. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Service or component name, written as `service` on every record. */
  service: string;
  level?: LogLevel;
  /** Where JSON lines go; defaults to process.stdout. */
  sink?: (line: string) => void;
  /** Extra fields on every record. */
  fields?: LogFields;
}

/** Parses a log level, naming the source of the value in the error. */
export function parseLogLevel(value: string, source = 'log level'): LogLevel {
  const v = value.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(v)) return v as LogLevel;
  throw new Error(`${source}: got "${value}", expected one of ${LOG_LEVELS.join(', ')}`);
}

function errorFields(err: unknown): LogFields {
  if (err instanceof Error) {
    const out: LogFields = { message: err.message, name: err.name };
    if (err.stack) out.stack = err.stack;
    const code = (err as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    return out;
  }
  return { message: String(err) };
}

/**
 * Structured JSON logs, one object per line: `ts`, `level`, `service`, `msg`,
 * the active trace and span ids when a span is current (so a log line can be
 * joined with its trace), then the record's own fields. Error values are
 * expanded into message/name/stack so they survive JSON.
 */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? (process.env.POSTTRAIN_LOG_LEVEL ? parseLogLevel(process.env.POSTTRAIN_LOG_LEVEL, 'POSTTRAIN_LOG_LEVEL') : 'info');
  const sink = options.sink ?? ((line: string) => process.stdout.write(line + '\n'));
  const threshold = LOG_LEVELS.indexOf(level);
  const base = options.fields ?? {};

  const write = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields, force = false): void => {
    if (LOG_LEVELS.indexOf(lvl) < threshold && !(force && level !== 'silent')) return;
    const record: LogFields = { ts: new Date().toISOString(), level: lvl, service: options.service, msg };
    const span = trace.getActiveSpan();
    if (span) {
      const sc = span.spanContext();
      record.trace_id = sc.traceId;
      record.span_id = sc.spanId;
    }
    for (const [k, v] of Object.entries(base)) record[k] = v;
    if (fields) for (const [k, v] of Object.entries(fields)) record[k] = k === 'err' || v instanceof Error ? errorFields(v) : v;
    sink(JSON.stringify(record));
  };

  return {
    level,
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    lifecycle: (m, f) => write('info', m, f, true),
    child: (fields) => createLogger({ ...options, level, sink, fields: { ...base, ...fields } }),
  };
}
