/**
 * @posttrain/cli: the `posttrain` command.
 *
 * @example
 * ```ts
 * import { runCli } from '@posttrain/cli';
 * const code = await runCli(['up', '--samplers', '2'], { stdout: process.stdout, stderr: process.stderr, interrupted: new Promise(() => {}) });
 * ```
 */
export { runCli, main, COMMANDS } from './main';
export { UsageError } from './command';
export type { Command, CommandIO } from './command';
export { startLocalServices, LocalServiceGroup } from './local-services';
export type { LocalService, LocalServiceSpec, LocalServicesOptions } from './local-services';
export { SERVICE_NAMES, repoRoot } from './repo-paths';
export type { ServiceName } from './repo-paths';
