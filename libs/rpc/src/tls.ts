import { readFileSync } from 'node:fs';
import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { ConfigError } from '@posttrain/flags';

/** A server's certificate and key (PEM), and for mutual TLS the CA that client certificates must chain to. */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** Set: every client must present a certificate signed by this CA (mutual TLS). */
  clientCa?: Buffer;
}

/** A client's trust roots (PEM; unset = the system's) and, for mutual TLS, its own certificate and key. */
export interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

function readPem(path: string, source: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${source}: cannot read "${path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!pem.includes('-----BEGIN ')) throw new ConfigError(`${source}: "${path}" is not a PEM file (no -----BEGIN line)`);
  return pem;
}

/**
 * Server TLS from file paths (the --tls-cert / --tls-key / --tls-client-ca
 * options); undefined when none is set (plaintext). Errors name the option.
 */
export function loadServerTls(paths: { cert?: string; key?: string; clientCa?: string }): ServerTls | undefined {
  const { cert, key, clientCa } = paths;
  if (!cert && !key && !clientCa) return undefined;
  if (!cert || !key) throw new ConfigError(`--tls-cert and --tls-key (POSTTRAIN_TLS_CERT, POSTTRAIN_TLS_KEY): got ${cert ? 'only the certificate' : key ? 'only the key' : 'neither'}, expected both${clientCa ? ' (--tls-client-ca needs them)' : ''}`);
  return { cert: readPem(cert, '--tls-cert'), key: readPem(key, '--tls-key'), clientCa: clientCa ? readPem(clientCa, '--tls-client-ca') : undefined };
}

/**
 * Client TLS from the environment, which every posttrain client reads
 * unless given its own: POSTTRAIN_TLS_CA (trust roots; set alone it turns
 * TLS on), POSTTRAIN_TLS_CLIENT_CERT and POSTTRAIN_TLS_CLIENT_KEY (mutual
 * TLS). Undefined when none is set (plaintext).
 */
export function clientTlsFromEnv(env: Record<string, string | undefined> = process.env): ClientTls | undefined {
  const ca = env.POSTTRAIN_TLS_CA || undefined;
  const cert = env.POSTTRAIN_TLS_CLIENT_CERT || undefined;
  const key = env.POSTTRAIN_TLS_CLIENT_KEY || undefined;
  if (!ca && !cert && !key) return undefined;
  if (!cert !== !key) throw new ConfigError(`POSTTRAIN_TLS_CLIENT_CERT and POSTTRAIN_TLS_CLIENT_KEY: got ${cert ? 'only the certificate' : 'only the key'}, expected both or neither`);
  return {
    ca: ca ? readPem(ca, 'environment variable POSTTRAIN_TLS_CA') : undefined,
    cert: cert ? readPem(cert, 'environment variable POSTTRAIN_TLS_CLIENT_CERT') : undefined,
    key: key ? readPem(key, 'environment variable POSTTRAIN_TLS_CLIENT_KEY') : undefined,
  };
}

export function serverCredentials(tls: ServerTls | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(tls.clientCa ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.clientCa !== undefined);
}

export function channelCredentials(tls: ClientTls | undefined): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  return credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
}
