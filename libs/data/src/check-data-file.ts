import { parseDataConfig, type DataFieldNames, type DataFormat, type DataStyle } from './data-config';
import { describeProblem } from './data-error';
import { createReadSummary, readDataFile, type DataReadSummary } from './read-data-file';

export interface DataCheckOptions {
  /** Format override; default: detected from the first valid line. */
  format?: DataFormat;
  style?: DataStyle;
  fields?: Partial<DataFieldNames>;
  groundTruthField?: string;
}

/**
 * What `posttrain data check` prints: the format, the counts, every problem
 * (the summary of reading the whole file; its schema is null when no line was
 * valid and no format was given).
 */
export interface DataCheckReport extends DataReadSummary {
  /** True when the file has at least one valid record and no problem: a CLI exits non-zero otherwise. */
  ok: boolean;
}

/**
 * Reads a whole JSONL file (streaming) and reports every bad line instead of
 * stopping at the first. An unreadable file (missing, a directory) rejects,
 * and so do invalid options (an unknown format), with the option named.
 */
export async function checkDataFile(file: string, options: DataCheckOptions = {}): Promise<DataCheckReport> {
  // Options may come straight from a command line: validate them like a config.
  const config = parseDataConfig({ ...options, errorPolicy: 'skip' }, 'data check');
  const summary = createReadSummary(file);
  for await (const _ of readDataFile(file, config, summary)) {
    // Records are validated as they stream by; only the summary is kept.
  }
  return { ...summary, ok: summary.invalid === 0 && summary.valid > 0 };
}

/** The report as text for a terminal: a header, the counts, then one line per problem. */
export function formatDataCheckReport(report: DataCheckReport): string {
  const format = report.schema === null ? 'unknown (no valid line)' : `${report.schema.style} ${report.schema.format} (decided by ${report.schema.decidedBy})`;
  const lines = [
    `${report.file}: ${report.ok ? 'OK' : 'PROBLEMS FOUND'}`,
    `  format:  ${format}`,
    `  lines:   ${report.lines} (valid ${report.valid}, invalid ${report.invalid}, blank ${report.blank})`,
  ];
  if (report.valid === 0) lines.push('  no valid record');
  if (report.problems.length > 0) {
    lines.push(`  problems (${report.problems.length}):`);
    for (const problem of report.problems) lines.push(`    ${describeProblem(problem)}`);
  }
  return lines.join('\n');
}
