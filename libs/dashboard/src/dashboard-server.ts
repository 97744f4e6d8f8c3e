import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RunState, type Run, type RunEvent } from '@posttrain/proto';
import type { ServiceStatus } from './service-status';
import { renderDashboardPage, type PageText, type RunSummary } from './dashboard-page';

/** What the dashboard reads: the Trainer's run registry (the same events WatchRun streams), or the demo's pipeline (MemoryRunSource). */
export interface DashboardSource {
  /** The runs, newest first. */
  list(): Run[];
  get(id: string): Run | undefined;
  events(id: string, after: number): RunEvent[];
  subscribe(listener: (e: RunEvent) => void): () => void;
  /** The stage a run shows; default: its spec's stage case. */
  stageOf?(run: Run): string;
}

export interface DashboardOptions {
  /** Open event streams at most; one more is answered 503. */
  maxClients: number;
  /** How a user raises maxClients, named in the 503 message; default the Trainer's flag, --dashboard-max-clients. */
  maxClientsSetting?: string;
  /** The serving services' statuses (empty when the trainer knows no addresses). */
  services?: () => ServiceStatus[];
  /** Runs whose metric history a new event stream replays, newest first. */
  replayRuns?: number;
  /** Metric events replayed per run (the newest). */
  replayPoints?: number;
  /** Generation-samples events replayed per run (the newest); default 2. */
  replaySamples?: number;
  /** The page's title and the note shown when there are no services. */
  page?: PageText;
  /** Comment lines that keep idle streams open through proxies (ms). */
  heartbeatMs?: number;
}

/** A client's buffered bytes past which it is dropped (it is not reading). */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const ROUTES = 'the dashboard serves /, /api/runs, /api/services and /events';

export function runSummary(run: Run, stage = run.spec?.stage?.$case ?? ''): RunSummary {
  return {
    id: run.id,
    name: run.name,
    stage,
    state: RunState[run.state] ?? String(run.state),
    lastStep: run.lastStep,
    totalSteps: run.totalSteps,
    createTime: run.createTime?.toISOString() ?? '',
    endTime: run.endTime?.toISOString() ?? '',
    errorMessage: run.errorMessage,
    metrics: run.metricsSummary,
  };
}

/** One server-sent event: `event:` line, one `data:` line of JSON, blank line. */
export function sseFrame(event: string, data: unknown): string {
  if (!/^[a-z-]+$/.test(event)) throw new Error(`SSE event name "${event}": expected lowercase letters and dashes`);
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function metricsPayload(e: RunEvent): { runId: string; step: number; split: string; values: Record<string, number> } | null {
  if (e.event?.$case !== 'metrics') return null;
  const m = e.event.value;
  return { runId: e.runId, step: m.step, split: m.split, values: m.values };
}

interface SamplesPayload {
  runId: string;
  step: number;
  /** When the step's samples were recorded (ISO 8601): the page shows the newest first. */
  time: string;
  samples: { prompt: string; completion: string; reward: number }[];
}

function samplesPayload(e: RunEvent): SamplesPayload | null {
  if (e.event?.$case !== 'samples') return null;
  const g = e.event.value;
  return { runId: e.runId, step: g.step, time: e.time?.toISOString() ?? '', samples: g.samples.map((x) => ({ prompt: x.prompt, completion: x.completion, reward: x.reward })) };
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/**
 * The dashboard's HTTP handler: read-only (GET and HEAD only), one page,
 * two JSON endpoints and a server-sent event stream fed by the registry's
 * run events. `broadcastServices` pushes new service statuses to every
 * stream; `close` ends the streams.
 */
export class DashboardHandler {
  private readonly clients = new Set<ServerResponse>();
  private readonly unsubscribe: () => void;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly source: DashboardSource,
    private readonly options: DashboardOptions,
  ) {
    if (!Number.isInteger(options.maxClients) || options.maxClients < 1) throw new Error(`maxClients: got ${options.maxClients}, expected an integer >= 1`);
    this.unsubscribe = source.subscribe((e) => this.onRunEvent(e));
    this.heartbeat = setInterval(() => this.send(': ping\n\n'), options.heartbeatMs ?? 15_000).unref();
  }

  get clientCount(): number {
    return this.clients.size;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...SECURITY_HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end(`method ${req.method} not allowed: the dashboard is read-only (GET, HEAD)\n`);
      return;
    }
    if (path === '/' || path === '/index.html') return this.page(res);
    if (path === '/api/runs') return this.json(res, { runs: this.summaries() });
    if (path === '/api/services') return this.json(res, { services: this.options.services?.() ?? [] });
    if (path === '/events') return this.stream(req, res);
    res.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
    res.end(`not found; ${ROUTES}\n`);
  }

  /** Pushes the services' statuses to every open stream. */
  broadcastServices(statuses: ServiceStatus[]): void {
    this.send(sseFrame('services', statuses));
  }

  close(): void {
    this.unsubscribe();
    clearInterval(this.heartbeat);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private page(res: ServerResponse): void {
    const { html, scriptHashes } = renderDashboardPage(this.summaries(), this.options.page);
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': `default-src 'none'; script-src ${scriptHashes.map((h) => `'sha256-${h}'`).join(' ')}; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'`,
    });
    res.end(html);
  }

  private summaries(runs = this.source.list()): RunSummary[] {
    return runs.map((r) => this.summary(r));
  }

  private summary(run: Run): RunSummary {
    return runSummary(run, this.source.stageOf?.(run));
  }

  private json(res: ServerResponse, body: unknown): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  }

  private stream(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= this.options.maxClients) {
      res.writeHead(503, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'retry-after': '10' });
      res.end(`too many dashboard clients: ${this.clients.size} streams open, at most ${this.options.maxClients} (${this.options.maxClientsSetting ?? '--dashboard-max-clients'})\n`);
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    if (req.method === 'HEAD') return void res.end();
    this.clients.add(res);
    const drop = () => this.clients.delete(res);
    req.on('close', drop);
    res.on('close', drop);
    const runs = this.source.list();
    let out = 'retry: 2000\n\n' + sseFrame('reset', {}) + sseFrame('runs', this.summaries(runs));
    for (const run of runs.slice(0, this.options.replayRuns ?? 20)) {
      const history = this.source.events(run.id, 0);
      const points = history.map(metricsPayload).filter((p) => p !== null);
      for (const p of points.slice(-(this.options.replayPoints ?? 5000))) out += sseFrame('metrics', p);
      const samples = history.map(samplesPayload).filter((p) => p !== null);
      for (const p of samples.slice(-(this.options.replaySamples ?? 2))) out += sseFrame('samples', p);
    }
    const services = this.options.services?.() ?? [];
    if (services.length > 0) out += sseFrame('services', services);
    this.write(res, out);
  }

  private onRunEvent(e: RunEvent): void {
    const metrics = metricsPayload(e);
    if (metrics) return this.send(sseFrame('metrics', metrics));
    const samples = samplesPayload(e);
    if (samples) return this.send(sseFrame('samples', samples));
    const run = this.source.get(e.runId);
    if (run && (e.event?.$case === 'stateChanged' || e.event?.$case === 'finished' || e.event?.$case === 'checkpoint')) this.send(sseFrame('run', this.summary(run)));
  }

  private send(chunk: string): void {
    for (const c of this.clients) this.write(c, chunk);
  }

  private write(res: ServerResponse, chunk: string): void {
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      this.clients.delete(res);
      res.destroy();
      return;
    }
    res.write(chunk);
  }
}

export interface DashboardServer {
  /** http://host:port/ */
  url: string;
  port: number;
  handler: DashboardHandler;
  close(): Promise<void>;
}

/** Serves the dashboard on `host:port` (0 = a free port). */
export async function startDashboardServer(source: DashboardSource, host: string, port: number, options: DashboardOptions): Promise<DashboardServer> {
  const handler = new DashboardHandler(source, options);
  const server: Server = createServer((req, res) => handler.handle(req, res));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`cannot listen on ${host}:${port} (dashboard port): ${err.message}`)));
      server.listen(port, host, () => resolve());
    });
  } catch (err) {
    handler.close();
    throw err;
  }
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`,
    port: bound,
    handler,
    close: () =>
      new Promise<void>((resolve) => {
        handler.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
