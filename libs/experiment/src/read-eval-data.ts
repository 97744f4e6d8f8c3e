import { existsSync, statSync } from 'node:fs';
import type { DataLine } from '@posttrain/data';
import { DataError, loadDataFile, parseDataConfig } from '@posttrain/data';
import type { ChatMessage } from '@posttrain/tokenizer';

/** A prompt with its verifiable answer (a prompt-only record), as read from a data file. */
export interface AnswerItem {
  /** 1-based line number in the file. */
  line: number;
  prompt: string | ChatMessage[];
  answer: string;
}

/** What an evaluation file holds: prompts with answers, or preference pairs (kept as data lines for tokenizePreference). */
export type EvalData =
  | { kind: 'answers'; file: string; items: AnswerItem[] }
  | { kind: 'preferences'; file: string; lines: DataLine[] };

/** A problem with an evaluation file: the message names the file (and the line, when one is at fault). */
export class EvalDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvalDataError';
  }
}

/**
 * Reads an evaluation file: prompt-only records with answers (`{"prompt",
 * "answer"}`, the ground truth also read from `ground_truth` / `solution`) or
 * preference pairs (`{"prompt","chosen","rejected"}`, standard or
 * conversational). The format is detected from the first valid line; any other
 * format, a malformed line, or a prompt without an answer is an error naming
 * the file and the line.
 */
export async function readEvalData(file: string, options: { groundTruthField?: string } = {}): Promise<EvalData> {
  if (!existsSync(file)) throw new EvalDataError(`--data ${file}: no such file`);
  if (!statSync(file).isFile()) throw new EvalDataError(`--data ${file}: not a regular file`);
  const config = parseDataConfig({ errorPolicy: 'fail', ...(options.groundTruthField ? { groundTruthField: options.groundTruthField } : {}) }, 'eval data');
  let lines: DataLine[];
  try {
    ({ lines } = await loadDataFile(file, config));
  } catch (e) {
    if (e instanceof DataError) throw new EvalDataError(e.message);
    throw e;
  }
  if (lines.length === 0) throw new EvalDataError(`${file}: no records (expected prompt-only records with answers or preference pairs)`);
  const format = lines[0].record.format;
  if (format === 'preference' || format === 'implicit-preference') return { kind: 'preferences', file, lines };
  if (format === 'prompt-only') {
    const items: AnswerItem[] = lines.map(({ line, record }) => {
      if (record.format !== 'prompt-only') throw new EvalDataError(`${file}:${line}: expected a prompt-only record like line ${lines[0].line}, got ${record.format}`);
      if (record.groundTruth === null || record.groundTruth.trim() === '') {
        throw new EvalDataError(`${file}:${line}: field "answer": missing or empty; answer accuracy needs the ground truth of every prompt (in "answer", "ground_truth" or "solution")`);
      }
      return { line, prompt: record.prompt, answer: record.groundTruth };
    });
    return { kind: 'answers', file, items };
  }
  throw new EvalDataError(
    `${file}:${lines[0].line}: a ${format} record; expected prompt-only records with answers ({"prompt", "answer"}) for answer accuracy, or preference pairs ({"prompt", "chosen", "rejected"}) for preference accuracy`,
  );
}
