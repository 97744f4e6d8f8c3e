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
  return registry.subscribe((event) => {
    if (event.event?.$case !== 'metrics' || event.event.value.split !== 'train') return;
    // The registry records the run's total steps before it emits the step's event.
    const totalSteps = registry.get(event.runId)?.totalSteps ?? 0;
    gauges.update(event.event.value.step, totalSteps, event.event.value.values, { run_id: event.runId });
  });
}
