import { statSync } from 'node:fs';
import { checkDataFile, formatDataCheckReport, type DataCheckOptions } from '@posttrain/data';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import { UsageError, type Command } from '../command';

const options = defineConfig({
  format: { kind: 'string', flag: 'format', description: 'record format instead of detecting it from the first valid line', choices: ['auto', 'language-modeling', 'prompt-completion', 'preference', 'implicit-preference', 'prompt-only'] },
  style: { kind: 'string', flag: 'style', description: 'standard (strings) or conversational (message lists) instead of detecting it', choices: ['auto', 'standard', 'conversational'] },
  groundTruthField: { kind: 'string', flag: 'ground-truth-field', description: 'column with the verifiable answer of a prompt-only record (default: answer, then solution)' },
  json: { kind: 'bool', flag: 'json', description: 'print the report as one JSON object', default: false },
});

/** `posttrain data check FILE`: every problem of a JSONL dataset, with its line number. */
export const dataCheckCommand: Command = {
  name: 'data check',
  summary: 'validate a JSONL dataset in the TRL formats; exit 1 if any line has a problem',
  help: () =>
    `usage: posttrain data check FILE [options]\n\nReads FILE as a stream and reports the detected format, the counts (lines, valid, invalid,\nblank) and every problem with its line number and field. Exits 0 when every non-blank line is\nvalid, 1 when there is a problem (or no valid line), 2 on a usage error.\n\nOptions:\n${describeConfig(options)}\n`,
  run: async (argv, io) => {
    const [file, ...rest] = argv;
    if (!file || file.startsWith('--')) throw new UsageError('missing FILE: posttrain data check FILE [--format F]');
    const opts = parseConfig(options, { argv: rest });
    let isFile = false;
    try {
      isFile = statSync(file).isFile();
    } catch {
      throw new UsageError(`cannot read ${file}: no such file`);
    }
    if (!isFile) throw new UsageError(`cannot read ${file}: not a regular file`);
    const report = await checkDataFile(file, {
      ...(opts.format ? { format: opts.format as DataCheckOptions['format'] } : {}),
      ...(opts.style ? { style: opts.style as DataCheckOptions['style'] } : {}),
      ...(opts.groundTruthField ? { groundTruthField: opts.groundTruthField } : {}),
    });
    io.stdout.write(opts.json ? JSON.stringify(report) + '\n' : formatDataCheckReport(report) + '\n');
    return report.ok ? 0 : 1;
  },
};
