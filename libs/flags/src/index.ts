/**
 * @posttrain/flags: options from command-line flags and environment
 * variables, validated with errors that name the flag or variable, the value
 * and what was expected (flag > environment variable > default). The
 * `posttrain` CLI's commands (@posttrain/cli) parse their flags with it, and
 * so does every service through @posttrain/rpc's runService. It depends on
 * nothing, so both can use it without either depending on the other.
 *
 * @example
 * ```ts
 * import { defineConfig, describeConfig, parseConfig } from '@posttrain/flags';
 * const options = defineConfig({
 *   port: { kind: 'int', flag: 'port', env: 'POSTTRAIN_PORT', description: 'gRPC port', default: 50051, min: 0, max: 65535 },
 * });
 * const { port } = parseConfig(options, { argv: process.argv.slice(2), env: process.env }); // throws ConfigError
 * console.log(describeConfig(options)); // one line per option, for --help
 * ```
 */
export { defineConfig, parseConfig, describeConfig, parseSeeds, ConfigError } from './flags';
export type { OptionSpec, ConfigSchema, ParseConfigInput } from './flags';
