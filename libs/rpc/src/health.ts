import { service as healthService } from 'grpc-health-check';
import { status, type ServiceError } from '@grpc/grpc-js';
import { createClient } from './client';
import type { AnyServiceDefinition } from './handlers';

export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

const healthDefinition = healthService as unknown as AnyServiceDefinition;

/** One grpc.health.v1 Check of `service` ('' = the whole server). */
export async function checkHealth(address: string, service = '', deadlineMs = 2_000): Promise<HealthStatus> {
  const client = createClient(healthDefinition, [address], { deadlineMs, maxAttempts: 1 });
  try {
    const res = (await client.unary('Check', { service })) as { status: HealthStatus | number };
    const names: HealthStatus[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
    return typeof res.status === 'number' ? names[res.status] : res.status;
  } finally {
    client.close();
  }
}

/** Polls Check until SERVING, or throws after `timeoutMs` naming the last status or error. */
export async function waitForServing(address: string, options: { service?: string; timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {}): Promise<void> {
  const until = Date.now() + (options.timeoutMs ?? 30_000);
  let last = 'no answer';
  while (Date.now() < until) {
    if (options.signal?.aborted) throw new Error(`${address}: stopped waiting for SERVING (${String(options.signal.reason ?? 'aborted')}); last status: ${last}`);
    try {
      const s = await checkHealth(address, options.service ?? '', 1_000);
      if (s === 'SERVING') return;
      last = s;
    } catch (err) {
      const e = err as ServiceError;
      last = e.code === status.UNAVAILABLE ? 'UNAVAILABLE (not listening yet)' : e.message;
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
  throw new Error(`${address}${options.service ? ` (${options.service})` : ''} did not become SERVING within ${options.timeoutMs ?? 30_000} ms; last status: ${last}`);
}
