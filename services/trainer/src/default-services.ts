/**
 * The Trainer's own services, for PPO/GRPO runs whose spec names none: a
 * fixed sampler list (--sampler-addresses), or an elastic pool from DNS
 * (--sampler-dns, a headless Service) or from a file (--sampler-file), with
 * the reference and reward addresses. Checked once at start, so that a bad
 * flag stops the Trainer with a message naming it instead of failing runs.
 */
import { ConfigError } from '@posttrain/flags';
import type { RolloutServices } from '@posttrain/proto';
import { parseDnsTarget, samplerAddressSource, type SamplerAddressSource } from '@posttrain/rl';

export interface DefaultServiceFlags {
  samplerAddresses: string[];
  samplerDns: string;
  samplerFile: string;
  samplerRefreshSeconds: number;
  referenceAddress: string;
  rewardAddress: string;
}

/** The flags as a RolloutServices message; throws ConfigError naming the flag when two sampler sources are set or --sampler-dns is not name:port. */
export function defaultRolloutServices(flags: DefaultServiceFlags): RolloutServices {
  const named = [
    flags.samplerAddresses.length > 0 && '--sampler-addresses',
    flags.samplerDns !== '' && '--sampler-dns',
    flags.samplerFile !== '' && '--sampler-file',
  ].filter((flag): flag is string => flag !== false);
  if (named.length > 1) throw new ConfigError(`${named[1]}: set together with ${named[0]}; expected at most one of --sampler-addresses, --sampler-dns, --sampler-file`);
  if (flags.samplerDns !== '' && !parseDnsTarget(flags.samplerDns)) {
    throw new ConfigError(`--sampler-dns: got ${JSON.stringify(flags.samplerDns)}, expected name:port (a headless Service and the samplers' port, e.g. policy-sampler:50051)`);
  }
  const elastic = flags.samplerDns !== '' || flags.samplerFile !== '';
  return {
    samplerAddresses: [...flags.samplerAddresses],
    samplerDns: flags.samplerDns,
    samplerFile: flags.samplerFile,
    samplerRefreshSeconds: elastic ? flags.samplerRefreshSeconds : 0,
    referenceAddress: flags.referenceAddress,
    rewardAddress: flags.rewardAddress,
  };
}

/** Whether a spec's services name anything; a spec that names none gets the Trainer's own. */
export function namesServices(services: RolloutServices | undefined): boolean {
  return !!services && (services.samplerAddresses.length > 0 || services.samplerDns !== '' || services.samplerFile !== '' || services.referenceAddress !== '' || services.rewardAddress !== '');
}

/** The elastic source the default services name, for the dashboard's health rounds; undefined for a fixed list. */
export function defaultSamplerSource(services: RolloutServices): SamplerAddressSource | undefined {
  const refreshSeconds = services.samplerRefreshSeconds || 10;
  if (services.samplerFile) return samplerAddressSource({ kind: 'file', path: services.samplerFile, refreshSeconds });
  const target = services.samplerDns ? parseDnsTarget(services.samplerDns) : null;
  return target ? samplerAddressSource({ kind: 'dns', ...target, refreshSeconds }) : undefined;
}
