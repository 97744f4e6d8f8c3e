import type { ServiceStatus } from '@posttrain/dashboard';
import { PolicySamplerService } from '@posttrain/proto';
import type { SamplerAddressSource } from '@posttrain/rl';
import { checkHealth, createClient, type RpcClient } from '@posttrain/rpc';

export interface ServiceTargets {
  samplerAddresses: readonly string[];
  /** An elastic pool's source (--sampler-dns, --sampler-file): resolved again every round, so the page lists every replica. */
  samplerSource?: SamplerAddressSource;
  referenceAddress: string;
  rewardAddress: string;
}

type Target = { role: ServiceStatus['role']; address: string };

const CHECK_DEADLINE_MS = 2_000;

/**
 * Checks the trainer's default services (its --sampler-addresses or the
 * replicas --sampler-dns / --sampler-file resolve to, --reference-address
 * and --reward-address) every `intervalMs`: a
 * grpc.health.v1 Check each, and each sampler's GetInfo for its weights
 * version. `onUpdate` gets the whole list after every round.
 */
export class ServiceHealthPoller {
  private readonly targets: Target[];
  private readonly samplers = new Map<string, RpcClient<typeof PolicySamplerService>>();
  private statuses: ServiceStatus[];
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly given: ServiceTargets,
    private readonly intervalMs: number,
    private readonly onUpdate: (statuses: ServiceStatus[]) => void,
  ) {
    this.targets = [
      ...given.samplerAddresses.map((address) => ({ role: 'policy-sampler' as const, address })),
      ...(given.referenceAddress ? [{ role: 'reference' as const, address: given.referenceAddress }] : []),
      ...(given.rewardAddress ? [{ role: 'reward' as const, address: given.rewardAddress }] : []),
    ];
    this.statuses = this.targets.map((t) => ({ ...t, health: 'UNKNOWN', checkedAt: '' }));
  }

  /** The latest round's statuses (UNKNOWN before the first). */
  current(): ServiceStatus[] {
    return this.statuses;
  }

  /** Starts polling (the first round at once); nothing to do without targets. */
  start(): void {
    if ((this.targets.length === 0 && !this.given.samplerSource) || this.timer || this.stopped) return;
    const round = async () => {
      await this.checkAll();
      if (!this.stopped) this.timer = setTimeout(() => void round(), this.intervalMs).unref();
    };
    this.timer = setTimeout(() => void round(), 0).unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const c of this.samplers.values()) c.close();
    this.samplers.clear();
  }

  private async checkOne(t: Target): Promise<ServiceStatus> {
    const out: ServiceStatus = { ...t, health: 'UNREACHABLE', checkedAt: new Date().toISOString() };
    try {
      out.health = await checkHealth(t.address, '', CHECK_DEADLINE_MS);
    } catch (err) {
      out.error = (err as Error).message;
      return out;
    }
    if (t.role === 'policy-sampler') {
      let client = this.samplers.get(t.address);
      if (!client) this.samplers.set(t.address, (client = createClient(PolicySamplerService, [t.address], { deadlineMs: CHECK_DEADLINE_MS, maxAttempts: 1 })));
      try {
        out.weightsVersion = (await client.unary('getInfo', {})).weightsVersion;
      } catch (err) {
        out.error = `GetInfo: ${(err as Error).message}`;
      }
    }
    return out;
  }

  /** This round's targets: the fixed ones, and the replicas the sampler source names now (one UNREACHABLE row when it cannot be read). */
  private async roundTargets(): Promise<{ targets: Target[]; sourceError?: ServiceStatus }> {
    const source = this.given.samplerSource;
    if (!source) return { targets: this.targets };
    try {
      const replicas = (await source.resolve()).map((address) => ({ role: 'policy-sampler' as const, address }));
      for (const [address, client] of this.samplers) {
        if (replicas.some((r) => r.address === address)) continue;
        client.close();
        this.samplers.delete(address);
      }
      return { targets: [...replicas, ...this.targets] };
    } catch (err) {
      const sourceError: ServiceStatus = { role: 'policy-sampler', address: source.description, health: 'UNREACHABLE', error: (err as Error).message, checkedAt: new Date().toISOString() };
      return { targets: this.targets, sourceError };
    }
  }

  private async checkAll(): Promise<void> {
    const { targets, sourceError } = await this.roundTargets();
    const statuses = [...(sourceError ? [sourceError] : []), ...(await Promise.all(targets.map((t) => this.checkOne(t))))];
    if (this.stopped) return;
    this.statuses = statuses;
    this.onUpdate(statuses);
  }
}
