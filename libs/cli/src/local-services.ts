import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { waitForServing } from '@posttrain/rpc';
import { serviceCommand, type ServiceName } from './repo-paths';

export interface LocalServiceSpec {
  name: ServiceName;
  /** Label for output, e.g. `policy-sampler-2`. */
  label: string;
  args: string[];
  env?: Record<string, string>;
}

export interface LocalService {
  label: string;
  name: ServiceName;
  address: string;
  pid: number;
  process: ChildProcess;
  /** The trainer's dashboard (its `dashboard` log line), when it serves one. */
  dashboardUrl?: string;
}

export interface RestartPolicy {
  /** Restarts per replica over the group's life; past them the replica stays down (the others keep running). */
  maxRestarts: number;
  /** Wait before the first restart (ms); doubled for each further one, up to maxBackoffMs. */
  initialBackoffMs: number;
  maxBackoffMs: number;
}

/** What happened to a replica after it started: it exited, is being restarted, is back, or stays down. */
export type ServiceEvent =
  | { kind: 'exited'; label: string; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'restarting'; label: string; address: string; attempt: number; maxRestarts: number; inMs: number }
  | { kind: 'restarted'; label: string; address: string; pid: number; attempt: number }
  | { kind: 'restart-failed'; label: string; attempt: number; error: string }
  | { kind: 'gave-up'; label: string; restarts: number };

export interface LocalServicesOptions {
  host: string;
  /** Forwarded child log lines (JSON), if wanted. */
  onLog?: (label: string, line: string) => void;
  startupTimeoutMs?: number;
  /** Restart a replica that exits on its own, on the same port; unset = leave it down. */
  restart?: RestartPolicy;
  /** Exits and restarts, for logs. */
  onEvent?: (event: ServiceEvent) => void;
}

/**
 * Starts services as child processes on loopback, each on a free port it
 * picks itself and reports in its `listening` log line, then waits until
 * each answers SERVING on grpc.health.v1. If one fails to start, the others
 * are stopped and the error names the service and its last output. With a
 * restart policy, a replica that later dies is started again on its port
 * (callers keep their addresses), with backoff, a bounded number of times.
 */
export async function startLocalServices(specs: readonly LocalServiceSpec[], options: LocalServicesOptions): Promise<LocalServiceGroup> {
  const group = new LocalServiceGroup(options);
  try {
    await Promise.all(specs.map((s) => group.start(s)));
  } catch (err) {
    await group.stop();
    throw err;
  }
  return group;
}

export class LocalServiceGroup {
  readonly services: LocalService[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly restarts = new Map<string, number>();
  private stopping = false;
  /** Called when a service exits while the group is not stopping (before any restart). */
  onUnexpectedExit?: (label: string, code: number | null, signal: NodeJS.Signals | null) => void;

  constructor(private readonly options: LocalServicesOptions) {
    const r = options.restart;
    if (r) {
      if (!Number.isInteger(r.maxRestarts) || r.maxRestarts < 0) throw new Error(`restart.maxRestarts: got ${r.maxRestarts}, expected an integer >= 0`);
      if (!(r.initialBackoffMs >= 0) || !(r.maxBackoffMs >= r.initialBackoffMs)) throw new Error(`restart backoff: got ${r.initialBackoffMs}..${r.maxBackoffMs} ms, expected 0 <= initial <= max`);
    }
  }

  /** Starts one service on a free port (or `port`, for a restart); resolves once it is SERVING. */
  async start(spec: LocalServiceSpec, port = 0): Promise<LocalService> {
    const options = this.options;
    const { command, args } = serviceCommand(spec.name);
    const child = spawn(command, [...args, '--host', options.host, '--port', String(port), ...spec.args], {
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    const tail: string[] = [];
    const remember = (line: string) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      options.onLog?.(spec.label, line);
    };
    createInterface({ input: child.stderr! }).on('line', remember);
    let dashboardUrl: string | undefined;
    // Until the service answers SERVING, its exit fails the start at once with its output: before it
    // listens, or after (a model it cannot load), when it also stops the health polling.
    const startupMs = options.startupTimeoutMs ?? 60_000;
    const stopWaiting = new AbortController();
    let onExit!: (code: number | null, signal: NodeJS.Signals | null) => void;
    const exited = new Promise<never>((_, reject) => {
      onExit = (code, signal) => {
        stopWaiting.abort('the service exited');
        reject(new Error(`${spec.label} exited (${signal ?? `code ${code}`}) before it was ready; last output:\n${tail.join('\n')}`));
      };
    });
    child.once('exit', onExit);
    let timer: NodeJS.Timeout | undefined;
    let address: string;
    try {
      const listening = new Promise<string>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${spec.label} did not start listening within ${startupMs} ms; last output:\n${tail.join('\n')}`)), startupMs);
        createInterface({ input: child.stdout! }).on('line', (line) => {
          remember(line);
          try {
            const rec = JSON.parse(line) as { event?: string; address?: string; url?: string };
            if (rec.event === 'dashboard' && rec.url) dashboardUrl = rec.url;
            if (rec.event === 'listening' && rec.address) resolve(rec.address);
          } catch {
            // not a log record; kept in the tail for error messages
          }
        });
      });
      address = await Promise.race([listening, exited]);
      clearTimeout(timer);
      await Promise.race([waitForServing(address, { timeoutMs: startupMs, signal: stopWaiting.signal }), exited]);
    } finally {
      clearTimeout(timer);
      child.off('exit', onExit);
    }
    const existing = this.services.find((s) => s.label === spec.label);
    const svc: LocalService = existing ?? { label: spec.label, name: spec.name, address, pid: child.pid!, process: child };
    Object.assign(svc, { address, pid: child.pid!, process: child, dashboardUrl });
    if (!existing) this.services.push(svc);
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      this.onUnexpectedExit?.(spec.label, code, signal);
      options.onEvent?.({ kind: 'exited', label: spec.label, code, signal });
      void this.restart(spec, svc);
    });
    return svc;
  }

  /** Restarts a replica that died, on its port, with backoff; gives up after maxRestarts. */
  private async restart(spec: LocalServiceSpec, svc: LocalService): Promise<void> {
    const policy = this.options.restart;
    if (!policy) return;
    const port = Number(svc.address.slice(svc.address.lastIndexOf(':') + 1));
    for (;;) {
      const attempt = (this.restarts.get(spec.label) ?? 0) + 1;
      if (attempt > policy.maxRestarts) {
        this.options.onEvent?.({ kind: 'gave-up', label: spec.label, restarts: attempt - 1 });
        return;
      }
      this.restarts.set(spec.label, attempt);
      const inMs = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** (attempt - 1));
      this.options.onEvent?.({ kind: 'restarting', label: spec.label, address: svc.address, attempt, maxRestarts: policy.maxRestarts, inMs });
      await new Promise((r) => setTimeout(r, inMs));
      if (this.stopping) return;
      try {
        await this.start(spec, port);
        this.options.onEvent?.({ kind: 'restarted', label: spec.label, address: svc.address, pid: svc.pid, attempt });
        return;
      } catch (err) {
        if (this.stopping) return;
        this.options.onEvent?.({ kind: 'restart-failed', label: spec.label, attempt, error: (err as Error).message.split('\n')[0] });
      }
    }
  }

  /** SIGTERM to every child (graceful drain), SIGKILL to any still running after `killAfterMs`. */
  async stop(killAfterMs = 15_000): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
