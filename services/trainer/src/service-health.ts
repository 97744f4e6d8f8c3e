import type { ServiceStatus } from '@posttrain/dashboard';
import { PolicySamplerService } from '@posttrain/proto';
import { checkHealth, createClient, type RpcClient } from '@posttrain/rpc';


export interface ServiceTargets {
  samplerAddresses: readonly string[];
  referenceAddress: string;
  rewardAddress: string;
}

const CHECK_DEADLINE_MS = 2_000;

/**
 * Checks the trainer's default services (its --sampler-addresses,
 * --reference-address and --reward-address) every `intervalMs`: a
 * grpc.health.v1 Check each, and each sampler's GetInfo for its weights
 * version. `onUpdate` gets the whole list after every round.
 */
export class ServiceHealthPoller {
  private readonly targets: { role: ServiceStatus['role']; address: string }[];
  private readonly samplers = new Map<string, RpcClient<typeof PolicySamplerService>>();
  private statuses: ServiceStatus[];
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    targets: ServiceTargets,
    private readonly intervalMs: number,
    private readonly onUpdate: (statuses: ServiceStatus[]) => void,
  ) {
    this.targets = [
      ...targets.samplerAddresses.map((address) => ({ role: 'policy-sampler' as const, address })),
      ...(targets.referenceAddress ? [{ role: 'reference' as const, address: targets.referenceAddress }] : []),
      ...(targets.rewardAddress ? [{ role: 'reward' as const, address: targets.rewardAddress }] : []),
    ];
    this.statuses = this.targets.map((t) => ({ ...t, health: 'UNKNOWN', checkedAt: '' }));
  }

  /** The latest round's statuses (UNKNOWN before the first). */
  current(): ServiceStatus[] {
    return this.statuses;
  }

  /** Starts polling (the first round at once); nothing to do without targets. */
  start(): void {
    if (this.targets.length === 0 || this.timer || this.stopped) return;
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

  private async checkOne(t: { role: ServiceStatus['role']; address: string }): Promise<ServiceStatus> {
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

  private async checkAll(): Promise<void> {
    const statuses = await Promise.all(this.targets.map((t) => this.checkOne(t)));
    if (this.stopped) return;
    this.statuses = statuses;
    this.onUpdate(statuses);
  }
}
