/**
 * The live dashboard of `posttrain demo` and `posttrain experiment`: the
 * pipeline runs its stages in this process, not through the Trainer, so its
 * events feed a MemoryRunSource that the same dashboard serves. Each stage
 * is a run (id = the stage's name), RUNNING from stage-start to stage-end,
 * with a metrics event per step and the PPO / GRPO steps' samples.
 */
import { MemoryRunSource, startDashboardServer, type DashboardServer } from '@posttrain/dashboard';
import type { PipelineEvent } from '@posttrain/experiment';
import { RunState } from '@posttrain/proto';

/** Open dashboard pages at most (a local tool: a few tabs). */
const MAX_CLIENTS = 8;

export interface PipelineFeed {
  onEvent(e: PipelineEvent): void;
  /** Ends the stages still running (the pipeline stopped in them): CANCELLED or FAILED with the reason. */
  stop(state: RunState.FAILED | RunState.CANCELLED, message: string): void;
}

/** Turns pipeline events into runs of `source`; `prefix` keeps run ids apart when several pipelines share it (the experiment's seeds). */
export function pipelineFeed(source: MemoryRunSource, prefix = ''): PipelineFeed {
  // Stages may run at once (the pipeline's lanes).
  const running = new Set<string>();
  return {
    onEvent(e) {
      const id = prefix + e.stage;
      if (e.type === 'stage-start') {
        source.start(id, e.stage, e.title);
        running.add(id);
      } else if (e.type === 'step') {
        source.step(id, e.step, e.totalSteps, e.metrics, e.samples ?? []);
      } else {
        source.finish(id, RunState.SUCCEEDED, '', e.metrics);
        running.delete(id);
      }
    },
    stop(state, message) {
      for (const id of running) source.finish(id, state, message);
      running.clear();
    },
  };
}

/** Serves `source` on host:port (0 = a free port) as the pipeline's dashboard. */
export function startPipelineDashboard(source: MemoryRunSource, name: 'demo' | 'experiment', host: string, port: number): Promise<DashboardServer> {
  return startDashboardServer(source, host, port, {
    maxClients: MAX_CLIENTS,
    maxClientsSetting: `fixed in posttrain ${name}`,
    page: { title: `posttrain ${name}`, noServices: `The ${name} starts its serving services per RL stage; their health is not checked here.` },
  });
}
