import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './command';

/** A usage error unless `dir` is a model directory in the Hugging Face layout (it has config.json). */
export function requireModelDir(dir: string, flag: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${flag} ${dir}: no such directory`);
  if (!existsSync(join(dir, 'config.json'))) throw new UsageError(`${flag} ${dir}: not a model directory (no config.json)`);
}
