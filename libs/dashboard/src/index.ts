/**
 * @posttrain/dashboard: the live run dashboard, a read-only HTTP page of
 * runs, live uPlot curves, recent generations with their rewards and the
 * serving services' health, fed by run events. The Trainer serves it over
 * its run registry (`--dashboard-port`); `posttrain demo` over a
 * MemoryRunSource fed by the pipeline's events.
 *
 * @example
 * ```ts
 * import { MemoryRunSource, startDashboardServer } from '@posttrain/dashboard';
 * const source = new MemoryRunSource();
 * const dash = await startDashboardServer(source, '127.0.0.1', 0, { maxClients: 8 });
 * source.start('sft', 'sft');
 * source.step('sft', 1, 10, { 'train/loss': 2.3 });
 * console.log(dash.url);
 * await dash.close();
 * ```
 */
export { DashboardHandler, runSummary, sseFrame, startDashboardServer } from './dashboard-server';
export type { DashboardOptions, DashboardServer, DashboardSource } from './dashboard-server';
export { SAMPLE_ROWS, renderDashboardPage } from './dashboard-page';
export type { PageText, RunSummary } from './dashboard-page';
export { MemoryRunSource } from './memory-run-source';
export type { SampleText } from './memory-run-source';
export type { ServiceStatus } from './service-status';
