/**
 * Where the sampler pool finds its PolicySampler replicas: a fixed list, a
 * DNS name (the headless Service of a sampler Deployment or StatefulSet)
 * resolved to every address it has, or a file of addresses (a mounted
 * ConfigMap, or anything that rewrites it). The pool asks its source again
 * every refresh period and adds and removes replicas to match.
 *
 * A refresh that fails or finds no address leaves the pool as it is (a DNS
 * hiccup or a file caught mid-write must not empty it); the error is
 * reported. Only the first resolution, when the run opens, fails the run.
 */
import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';

/** The resolved source of a run config's services section (rl-run-config.ts). */
export type SamplerSourceConfig =
  | { kind: 'list'; addresses: string[] }
  | { kind: 'dns'; host: string; port: number; refreshSeconds: number }
  | { kind: 'file'; path: string; refreshSeconds: number };

/** A failure to read a source; `retryable` when waiting may help (DNS has no record yet, the file lists nobody yet). */
export class AddressSourceError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'AddressSourceError';
  }
}

export interface SamplerAddressSource {
  /** What the source reads, for logs and errors ("dns samplers.ns.svc:50051"). */
  readonly description: string;
  /** How often the pool asks again (ms); 0 for a fixed list. */
  readonly refreshMs: number;
  /** The current addresses: non-empty, deduplicated; a list and a file keep their order, DNS answers are sorted. */
  resolve(): Promise<string[]>;
}

/** host:port, [v6]:port or v6 literal made into one; the port an integer in 1..65535. */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2], port };
}

/** The address of host and port, brackets around an IPv6 literal. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `sampler_dns`'s value: "name:port", or "dns:///name:port" as gRPC writes a DNS target. */
export function parseDnsTarget(text: string): { host: string; port: number } | null {
  const parsed = parseHostPort(text.startsWith('dns:///') ? text.slice('dns:///'.length) : text);
  return parsed && !parsed.host.includes(':') ? parsed : null;
}

/**
 * The addresses of a sampler file: one host:port a line; blank lines and
 * everything after a `#` are ignored; a line listed twice counts once (in
 * the order of the file, which numbers the replicas' metrics). Throws
 * naming the file, line and text of a line that is not host:port.
 */
export function parseAddressFile(text: string, path: string): string[] {
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    if (!parseHostPort(line)) throw new AddressSourceError(`${path}:${i + 1}: got ${JSON.stringify(line)}, expected host:port (a port in 1..65535) or a # comment`, false);
    seen.add(line);
  });
  return [...seen];
}

/** A pool's starting list: non-empty, each a non-empty string, none twice. */
export function checkAddressList(addresses: readonly string[]): void {
  if (addresses.length === 0) throw new Error('sampler_addresses: empty, expected at least one PolicySampler address');
  const seen = new Set<string>();
  addresses.forEach((a, i) => {
    if (typeof a !== 'string' || a.trim() === '') throw new Error(`sampler_addresses[${i}]: got ${JSON.stringify(a)}, expected host:port`);
    if (seen.has(a)) throw new Error(`sampler_addresses[${i}]: ${a} is listed twice`);
    seen.add(a);
  });
}

export function fixedAddressSource(addresses: readonly string[]): SamplerAddressSource {
  const list = [...addresses];
  return { description: `sampler_addresses [${list.join(', ')}]`, refreshMs: 0, resolve: async () => [...list] };
}

export function fileAddressSource(path: string, refreshMs: number): SamplerAddressSource {
  const description = `sampler_file ${path}`;
  return {
    description,
    refreshMs,
    async resolve() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new AddressSourceError(`${description}: ${e.code === 'ENOENT' ? 'the file does not exist' : e.message}`, false);
      }
      const addresses = parseAddressFile(text, path);
      if (addresses.length === 0) throw new AddressSourceError(`${description}: no address in the file, expected at least one host:port line`, true);
      return addresses;
    },
  };
}

/** Every address of a name (A and AAAA records, /etc/hosts included): what a headless Service resolves to. */
export type HostResolver = (host: string) => Promise<string[]>;

export const systemResolver: HostResolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Every address `host` resolves to, each with `port`; `resolver` is injectable for tests. */
export function dnsAddressSource(host: string, port: number, refreshMs: number, resolver: HostResolver = systemResolver): SamplerAddressSource {
  const description = `sampler_dns ${joinHostPort(host, port)}`;
  return {
    description,
    refreshMs,
    async resolve() {
      let ips: string[];
      try {
        ips = await resolver(host);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new AddressSourceError(`${description}: ${e.code ? `${e.code} ` : ''}${e.message}`, true);
      }
      const addresses = [...new Set(ips.map((ip) => joinHostPort(ip, port)))].sort();
      if (addresses.length === 0) throw new AddressSourceError(`${description}: the name has no address`, true);
      return addresses;
    },
  };
}

/** The source a resolved run config names. */
export function samplerAddressSource(config: SamplerSourceConfig, resolver?: HostResolver): SamplerAddressSource {
  switch (config.kind) {
    case 'list':
      return fixedAddressSource(config.addresses);
    case 'dns':
      return dnsAddressSource(config.host, config.port, config.refreshSeconds * 1000, resolver);
    case 'file':
      return fileAddressSource(config.path, config.refreshSeconds * 1000);
  }
}

/**
 * The first addresses of a source: asks again every second while the error is
 * retryable (the samplers are still starting), for at most `waitMs`.
 */
export async function firstAddresses(source: SamplerAddressSource, waitMs: number, signal?: AbortSignal): Promise<string[]> {
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      return await source.resolve();
    } catch (err) {
      if (!(err instanceof AddressSourceError) || !err.retryable || Date.now() >= until || signal?.aborted) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, Math.max(0, until - Date.now()))));
  }
}
