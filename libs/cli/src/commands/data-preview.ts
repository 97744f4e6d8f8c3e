import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultDataConfig, previewExample, readDataFile, type DataConfig, type RecordPreview } from '@posttrain/data';
import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
import { loadTokenizer, type Tokenizer } from '@posttrain/tokenizer';
import { UsageError, type Command } from '../command';
import { requireModelDir } from '../model-dir';

const options = defineConfig({
  model: { kind: 'string', flag: 'model', description: 'model directory whose tokenizer and chat template render the data', required: true },
  data: { kind: 'string', flag: 'data', description: 'JSONL dataset in a TRL format', required: true },
  n: { kind: 'int', flag: 'n', description: 'records to show, from the start of the file', default: 3, min: 1 },
  assistantOnlyLoss: { kind: 'bool', flag: 'assistant-only-loss', description: 'conversations: train on assistant tokens only (the sft default); --no-assistant-only-loss trains on every token', default: true },
  completionOnlyLoss: { kind: 'bool', flag: 'completion-only-loss', description: 'prompt-completion: train on the completion only (the sft default)', default: true },
  maxLength: { kind: 'int', flag: 'max-length', description: 'truncate (or with --drop, drop) sequences longer than this, as training would', min: 1 },
  color: { kind: 'string', flag: 'color', description: 'mark trained tokens with colour (auto: when stdout is a terminal) or with [[brackets]]', default: 'auto', choices: ['auto', 'always', 'never'] },
});

const GREEN = '\x1b[1;32m';
const RESET = '\x1b[0m';

/** `posttrain data preview`: the first records as training sees them, trained tokens marked. */
export const dataPreviewCommand: Command = {
  name: 'data preview',
  summary: 'show the first records rendered by the model\'s chat template, with the trained tokens marked',
  help: () =>
    `usage: posttrain data preview --model DIR --data F.jsonl [--n 3] [options]\n\nRenders the first records with the model's tokenizer and chat template, through the same\ntokenization as training, and marks the tokens the loss is computed on: green on a terminal,\n[[between double brackets]] otherwise. Each record ends with its token counts.\n\nOptions:\n${describeConfig(options)}\n`,
  run: async (argv, io) => {
    const o = parseConfig(options, { argv });
    requireModelDir(o.model, '--model');
    if (!existsSync(join(o.model, 'tokenizer.json'))) throw new UsageError(`--model: "${o.model}" has no tokenizer.json, so the data cannot be tokenized`);
    if (!existsSync(o.data) || !statSync(o.data).isFile()) throw new UsageError(`--data: cannot read "${o.data}": no such file`);
    const color = o.color === 'always' || (o.color === 'auto' && (io.stdout as NodeJS.WriteStream).isTTY === true);
    const tok = await loadTokenizer(o.model);
    const config: DataConfig = { ...defaultDataConfig(), maxLength: o.maxLength ?? null };
    const sft = { maxLength: config.maxLength, truncation: config.truncation, assistantOnlyLoss: o.assistantOnlyLoss, completionOnlyLoss: o.completionOnlyLoss };
    let shown = 0;
    for await (const line of readDataFile(o.data, config)) {
      const preview = previewExample(line, tok, sft);
      io.stdout.write(formatPreview(preview, tok, color, line.record.format, line.record.style));
      if (++shown >= o.n) break;
    }
    return 0;
  },
};

/** One record's preview as text: each sequence rendered with its trained runs marked, then its counts. */
export function formatPreview(preview: RecordPreview, tok: Pick<Tokenizer, 'decode'>, color: boolean, format: string, style: string): string {
  const head = `--- line ${preview.line} (${format}, ${style})`;
  if (!preview.ok) return `${head}: dropped, ${preview.reason}\n`;
  let out = '';
  for (const s of preview.sequences) {
    out += `${head}${s.label === 'sft' ? '' : ` ${s.label}`}\n`;
    for (const run of s.runs) {
      const text = tok.decode(run.ids);
      // Colour line by line, so no escape sequence spans a newline.
      out += !run.trained ? text : color ? text.replace(/[^\n]+/g, (line) => `${GREEN}${line}${RESET}`) : `[[${text}]]`;
    }
    out += `${out.endsWith('\n') ? '' : '\n'}(${s.tokens} tokens, ${s.trained} trained${s.label === 'prompt' ? '; generation starts after the prompt' : ''})\n`;
  }
  return out;
}
