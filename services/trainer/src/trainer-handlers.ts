import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ListRunsResponse, RolloutServices, RunSpec, RunState, type TrainerService } from '@posttrain/proto';
import { invalidArgument, notFound, RpcError, status, type ServiceHandlers } from '@posttrain/rpc';
import { RUN_ID_PATTERN, RUN_ID_RULE } from '@posttrain/training';
import { namesServices } from './default-services';
import { forkRunWorker } from './fork-run-worker';
import { confinePath, resolvePathRoots, type PathRoots } from './path-roots';
import { isFinished, type RunRegistry } from './run-registry';
import type { RunExecutor } from './run-registry';
import type { RunJob } from './run-job';
import { configStageOf, runSpecToConfig, runSpecToRlRunConfig } from './run-spec-to-config';

const MAX_NAME_CHARS = 256;
const MAX_PATHS = 64;

function checkRunId(id: string, field = 'run_id'): void {
  if (!id) throw invalidArgument(field, 'empty, expected a run id');
  if (!RUN_ID_PATTERN.test(id)) throw invalidArgument(field, `got "${id.slice(0, 80)}", expected ${RUN_ID_RULE}`);
}

/** The parts of a RunSpec checked before its paths are confined; the rest is checked as a run config (run-spec-to-config.ts). */
export function validateRunSpecCommon(spec: RunSpec | undefined): asserts spec is RunSpec {
  if (!spec) throw invalidArgument('spec', 'not set, expected a RunSpec');
  if (spec.runId) checkRunId(spec.runId, 'spec.run_id');
  if (spec.name.length > MAX_NAME_CHARS) throw invalidArgument('spec.name', `${spec.name.length} characters, expected at most ${MAX_NAME_CHARS}`);
  if (!spec.stage) throw invalidArgument('spec.stage', 'not set, expected one of sft, reward_model, dpo, ppo, grpo');
  if (!spec.baseModelDir) throw invalidArgument('spec.base_model_dir', 'empty, expected a model directory (Hugging Face layout)');
  if (!spec.dataset || spec.dataset.paths.length === 0) throw invalidArgument('spec.dataset.paths', 'empty, expected at least one JSONL file');
  if (spec.dataset.evalFraction < 0 || spec.dataset.evalFraction >= 1) throw invalidArgument('spec.dataset.eval_fraction', `got ${spec.dataset.evalFraction}, expected a value in [0, 1)`);
  const online = spec.stage.$case === 'ppo' || spec.stage.$case === 'grpo';
  if (!online && spec.batchSize < 1) throw invalidArgument('spec.batch_size', `got ${spec.batchSize}, expected >= 1`);
  if (spec.gradAccumulationSteps < 0) throw invalidArgument('spec.grad_accumulation_steps', `got ${spec.gradAccumulationSteps}, expected >= 0 (0 means 1)`);
  if (spec.maxSteps < 0) throw invalidArgument('spec.max_steps', `got ${spec.maxSteps}, expected >= 0`);
  if (!(spec.maxEpochs >= 0)) throw invalidArgument('spec.max_epochs', `got ${spec.maxEpochs}, expected >= 0`);
}

/**
 * A copy of `spec` whose every path is the real path inside its root
 * (path-roots.ts): models from the models or runs root (an earlier run's
 * output), data files from the data root, output_dir in the runs root
 * (empty: the runs root itself). Nothing outside the roots is opened.
 */
export function confineSpecPaths(spec: RunSpec, roots: PathRoots): RunSpec {
  const out = RunSpec.fromPartial(spec);
  const ds = out.dataset!;
  if (ds.paths.length > MAX_PATHS) throw invalidArgument('spec.dataset.paths', `${ds.paths.length} files, expected at most ${MAX_PATHS}`);
  if (ds.evalPaths.length > MAX_PATHS) throw invalidArgument('spec.dataset.eval_paths', `${ds.evalPaths.length} files, expected at most ${MAX_PATHS}`);
  out.baseModelDir = confinePath('spec.base_model_dir', out.baseModelDir, ['models', 'runs'], roots);
  out.outputDir = out.outputDir ? confinePath('spec.output_dir', out.outputDir, ['runs'], roots) : roots.runs;
  ds.paths = ds.paths.map((p, i) => confinePath(`spec.dataset.paths[${i}]`, p, ['data'], roots));
  ds.evalPaths = ds.evalPaths.map((p, i) => confinePath(`spec.dataset.eval_paths[${i}]`, p, ['data'], roots));
  const st = out.stage!;
  if (st.$case === 'dpo' && st.value.reference?.$case === 'precomputedReferencePath') st.value.reference.value = confinePath('spec.dpo.precomputed_reference_path', st.value.reference.value, ['data', 'runs'], roots);
  if ((st.$case === 'ppo' || st.$case === 'grpo') && st.value.services?.samplerFile) {
    st.value.services.samplerFile = confinePath(`spec.${st.$case}.services.sampler_file`, st.value.services.samplerFile, ['data'], roots);
  }
  if (st.$case === 'ppo' && st.value.valueModelDir) st.value.valueModelDir = confinePath('spec.ppo.value_model_dir', st.value.valueModelDir, ['models', 'runs'], roots);
  if (st.$case === 'ppo' && st.value.ptxDataset) st.value.ptxDataset = confinePath('spec.ppo.ptx_dataset', st.value.ptxDataset, ['data'], roots);
  return out;
}

/** Files a run needs, checked before it is queued so the caller hears of a typo at once. */
function checkInputs(spec: RunSpec): void {
  if (!existsSync(join(spec.baseModelDir, 'config.json'))) throw invalidArgument('spec.base_model_dir', `"${spec.baseModelDir}" has no config.json (expected a model directory in the Hugging Face layout)`);
  const requireFile = (field: string, p: string) => {
    if (!existsSync(p) || !statSync(p).isFile()) throw invalidArgument(field, `"${p}": no such file`);
  };
  spec.dataset!.paths.forEach((p, i) => requireFile(`spec.dataset.paths[${i}]`, p));
  spec.dataset!.evalPaths.forEach((p, i) => requireFile(`spec.dataset.eval_paths[${i}]`, p));
  if (spec.stage?.$case === 'ppo' && spec.stage.value.ptxDataset) requireFile('spec.ppo.ptx_dataset', spec.stage.value.ptxDataset);
}

export interface TrainerHandlerOptions {
  /** Services for PPO/GRPO runs whose spec names none. */
  defaultServices?: RolloutServices;
  /** Where RunSpec paths may point; runs defaults to the registry's runs directory, models and data to ./models and ./data. */
  roots?: Partial<PathRoots>;
  /** After a cancel, how long a run worker may take to stop before it is killed. */
  cancelGraceMs?: number;
  /** How long PPO/GRPO calls to the reference and reward services retry UNAVAILABLE (ms); default runRl's. */
  serviceRetryMs?: number;
}

/**
 * Trainer handlers: the run API over a RunRegistry. Each run executes in its
 * own worker process (run-worker.ts): SFT, reward-model and DPO through
 * libs/training, PPO and GRPO through libs/rl, driving the sampler,
 * reference and reward services named in the spec. Every path of a spec is
 * confined to the roots first.
 */
export function createTrainerHandlers(registry: RunRegistry, options: TrainerHandlerOptions = {}): ServiceHandlers<typeof TrainerService> {
  const defaultServices = options.defaultServices ?? RolloutServices.fromPartial({});
  const roots = resolvePathRoots({ models: options.roots?.models ?? 'models', data: options.roots?.data ?? 'data', runs: options.roots?.runs ?? registry.runsDir });
  const workerExecutor = (id: string, stage: string, outputDir: string, job: RunJob): RunExecutor => ({
    stage,
    outputDir,
    execute: (o) => forkRunWorker(id, job, { ...o, cancelGraceMs: options.cancelGraceMs }),
  });
  return {
    startRun: async (request) => {
      validateRunSpecCommon(request.spec);
      const spec = confineSpecPaths(request.spec, roots);
      const stage = spec.stage!.$case;
      const id = spec.runId || `${configStageOf(stage)}-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-').toLowerCase()}`;
      if (registry.isActive(id)) throw new RpcError(status.ALREADY_EXISTS, `run "${id}" is already ${RunState[registry.get(id)!.state].toLowerCase()}`);
      if (!spec.resume && (registry.has(id) || existsSync(join(registry.runsDir, id)) || existsSync(join(spec.outputDir, id)))) throw new RpcError(status.ALREADY_EXISTS, `run "${id}" exists; set resume to continue it from its last checkpoint, or pick another run_id`);
      checkInputs(spec);
      let executor: RunExecutor;
      if (stage === 'ppo' || stage === 'grpo') {
        // A spec that names no services uses the trainer's own (POSTTRAIN_*_ADDRESS in Kubernetes).
        const stageSpec = spec.stage!.value as { services?: RolloutServices };
        if (!namesServices(stageSpec.services)) stageSpec.services = { ...defaultServices, samplerAddresses: [...defaultServices.samplerAddresses] };
        const rl = runSpecToRlRunConfig(spec, spec.outputDir, id);
        executor = workerExecutor(id, stage, rl.outputDir, { kind: 'rl', config: rl, serviceRetryMs: options.serviceRetryMs });
      } else {
        const config = runSpecToConfig(spec, spec.outputDir, id);
        const dpoRef = spec.stage?.$case === 'dpo' && spec.stage.value.reference?.$case === 'referenceAddress' ? spec.stage.value.reference.value : null;
        executor = workerExecutor(id, config.stage, config.output_dir, { kind: 'offline', config, dpoReferenceAddress: dpoRef });
      }
      return registry.start(id, spec, executor);
    },
    getRun: async (request) => {
      checkRunId(request.runId);
      const run = registry.get(request.runId);
      if (!run) throw notFound(`run "${request.runId}" not found`);
      return run;
    },
    listRuns: async (request) => {
      if (request.pageSize < 0 || request.pageSize > 1000) throw invalidArgument('page_size', `got ${request.pageSize}, expected 0..1000`);
      const size = request.pageSize || 50;
      let offset = 0;
      if (request.pageToken) {
        const m = /^o(\d+)$/.exec(request.pageToken);
        if (!m) throw invalidArgument('page_token', `got "${request.pageToken.slice(0, 80)}", which is not a token this server issued`);
        offset = Number(m[1]);
      }
      const all = registry.list(request.state);
      const runs = all.slice(offset, offset + size);
      return ListRunsResponse.fromPartial({ runs, nextPageToken: offset + size < all.length ? `o${offset + size}` : '' });
    },
    cancelRun: async (request) => {
      checkRunId(request.runId);
      const run = registry.cancel(request.runId, request.reason);
      if (!run) throw notFound(`run "${request.runId}" not found`);
      return run;
    },
    watchRun: async function* (request, ctx) {
      checkRunId(request.runId);
      if (request.afterSequence < 0) throw invalidArgument('after_sequence', `got ${request.afterSequence}, expected >= 0`);
      if (!registry.has(request.runId)) throw notFound(`run "${request.runId}" not found`);
      let after = request.afterSequence;
      for (;;) {
        const wait = registry.nextEvent(request.runId, ctx.signal);
        for (const e of registry.events(request.runId, after)) {
          after = e.sequence;
          yield e;
        }
        if (request.historyOnly || isFinished(registry.get(request.runId)!.state) || ctx.signal.aborted) return;
        await wait;
      }
    },
  };
}
