import type { PosttrainServer } from '@posttrain/rpc';
import { registerTrainGauges } from '@posttrain/telemetry';
import type { RunRegistry } from './run-registry';

/**
 * The Trainer's runs on its metrics port: posttrain_train_step, _total_steps,
 * _loss, _reward, _kl and _push_seconds, labelled by run_id, set from each
 * step's metrics as the registry records them (the events WatchRun streams).
 */
export function exportRunGauges(registry: RunRegistry, metrics: PosttrainServer['metrics']): () => void {
  const gauges = registerTrainGauges(metrics, ['run_id']);
  const totals = new Map<string, number>();
  return registry.subscribe((event) => {
    if (event.event?.$case !== 'metrics' || event.event.value.split !== 'train') return;
    const run = registry.get(event.runId);
    const total = run?.totalSteps ?? totals.get(event.runId) ?? 0;
    totals.set(event.runId, total);
    gauges.update(event.event.value.step, total, event.event.value.values, { run_id: event.runId });
  });
}
