import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The repository root: the CLI starts services from their source there. */
export function repoRoot(): string {
  const root = resolve(__dirname, '../../..');
  if (!existsSync(join(root, 'services'))) throw new Error(`cannot find the posttrain services next to the CLI (looked in ${root})`);
  return root;
}

export const SERVICE_NAMES = ['policy-sampler', 'reference', 'reward', 'trainer'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Command line that starts one service process. */
export function serviceCommand(name: ServiceName): { command: string; args: string[] } {
  // tsx resolved from here, not from the working directory, so services start from any cwd.
  return { command: process.execPath, args: ['--import', pathToFileURL(require.resolve('tsx')).href, join(repoRoot(), 'services', name, 'src', 'main.ts')] };
}
