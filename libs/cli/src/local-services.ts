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
}

export interface LocalServicesOptions {
  host: string;
  /** Forwarded child log lines (JSON), if wanted. */
  onLog?: (label: string, line: string) => void;
  startupTimeoutMs?: number;
}

/**
 * Starts services as child processes on loopback, each on a free port it
 * picks itself and reports in its `listening` log line, then waits until
 * each answers SERVING on grpc.health.v1. If one fails to start, the others
 * are stopped and the error names the service and its last output.
 */
export async function startLocalServices(specs: readonly LocalServiceSpec[], options: LocalServicesOptions): Promise<LocalServiceGroup> {
  const group = new LocalServiceGroup();
  try {
    await Promise.all(specs.map((s) => group.start(s, options)));
  } catch (err) {
    await group.stop();
    throw err;
  }
  return group;
}

export class LocalServiceGroup {
  readonly services: LocalService[] = [];
  private readonly children: ChildProcess[] = [];
  private stopping = false;
  /** Called when a service exits while the group is not stopping. */
  onUnexpectedExit?: (label: string, code: number | null, signal: NodeJS.Signals | null) => void;

  async start(spec: LocalServiceSpec, options: LocalServicesOptions): Promise<LocalService> {
    const { command, args } = serviceCommand(spec.name);
    const child = spawn(command, [...args, '--host', options.host, '--port', '0', ...spec.args], {
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.push(child);
    const tail: string[] = [];
    const remember = (line: string) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      options.onLog?.(spec.label, line);
    };
    createInterface({ input: child.stderr! }).on('line', remember);
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${spec.label} did not start listening within ${options.startupTimeoutMs ?? 60_000} ms; last output:\n${tail.join('\n')}`)), options.startupTimeoutMs ?? 60_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        remember(line);
        try {
          const rec = JSON.parse(line) as { event?: string; address?: string };
          if (rec.event === 'listening' && rec.address) {
            clearTimeout(timer);
            resolve(rec.address);
          }
        } catch {
          // not a log record; kept in the tail for error messages
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${spec.label} exited (${signal ?? `code ${code}`}) before it was ready; last output:\n${tail.join('\n')}`));
      });
    });
    child.on('exit', (code, signal) => {
      if (!this.stopping) this.onUnexpectedExit?.(spec.label, code, signal);
    });
    await waitForServing(address, { timeoutMs: options.startupTimeoutMs ?? 60_000 });
    const svc: LocalService = { label: spec.label, name: spec.name, address, pid: child.pid!, process: child };
    this.services.push(svc);
    return svc;
  }

  /** SIGTERM to every child (graceful drain), SIGKILL to any still running after `killAfterMs`. */
  async stop(killAfterMs = 15_000): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.children.map(
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
