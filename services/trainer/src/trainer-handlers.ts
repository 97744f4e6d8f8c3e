import { ListRunsResponse, type RunSpec, type TrainerService } from '@posttrain/proto';
import { invalidArgument, notFound, unimplemented, type ServiceHandlers } from '@posttrain/rpc';

export interface TrainerState {
  runsDir: string;
}

const RUN_ID = /^[a-z0-9_-]{1,64}$/;

function checkRunId(id: string, field = 'run_id'): void {
  if (!id) throw invalidArgument(field, 'empty, expected a run id');
  if (!RUN_ID.test(id)) throw invalidArgument(field, `got "${id.slice(0, 80)}", expected 1-64 characters of [a-z0-9_-]`);
}

/** The parts of a RunSpec that every stage needs. */
export function validateRunSpecCommon(spec: RunSpec | undefined): void {
  if (!spec) throw invalidArgument('spec', 'not set, expected a RunSpec');
  if (spec.runId) checkRunId(spec.runId, 'spec.run_id');
  if (!spec.stage) throw invalidArgument('spec.stage', 'not set, expected one of sft, reward_model, dpo, ppo, grpo');
  if (!spec.baseModelDir) throw invalidArgument('spec.base_model_dir', 'empty, expected a model directory (Hugging Face layout)');
  if (!spec.dataset || spec.dataset.paths.length === 0) throw invalidArgument('spec.dataset.paths', 'empty, expected at least one JSONL file');
  if (spec.dataset.evalFraction < 0 || spec.dataset.evalFraction >= 1) throw invalidArgument('spec.dataset.eval_fraction', `got ${spec.dataset.evalFraction}, expected a value in [0, 1)`);
  if (spec.batchSize < 1) throw invalidArgument('spec.batch_size', `got ${spec.batchSize}, expected >= 1`);
  if (spec.gradAccumulationSteps < 0) throw invalidArgument('spec.grad_accumulation_steps', `got ${spec.gradAccumulationSteps}, expected >= 0 (0 means 1)`);
  if (spec.maxSteps < 0) throw invalidArgument('spec.max_steps', `got ${spec.maxSteps}, expected >= 0`);
  if (!(spec.maxEpochs >= 0)) throw invalidArgument('spec.max_epochs', `got ${spec.maxEpochs}, expected >= 0`);
}

/**
 * Trainer handlers. Run specs are validated; the training stages arrive with
 * the trainer issue, so StartRun then answers UNIMPLEMENTED, and no run can
 * exist yet: lookups answer NOT_FOUND and ListRuns an empty page.
 */
export function createTrainerHandlers(_state: TrainerState): ServiceHandlers<typeof TrainerService> {
  return {
    startRun: async (request) => {
      validateRunSpecCommon(request.spec);
      throw unimplemented('StartRun', `the ${request.spec?.stage?.$case} stage is not implemented yet`);
    },
    getRun: async (request) => {
      checkRunId(request.runId);
      throw notFound(`run "${request.runId}" not found`);
    },
    listRuns: async (request) => {
      if (request.pageSize < 0 || request.pageSize > 1000) throw invalidArgument('page_size', `got ${request.pageSize}, expected 0..1000`);
      if (request.pageToken) throw invalidArgument('page_token', `got "${request.pageToken.slice(0, 80)}", which is not a token this server issued`);
      return ListRunsResponse.fromPartial({ runs: [], nextPageToken: '' });
    },
    cancelRun: async (request) => {
      checkRunId(request.runId);
      throw notFound(`run "${request.runId}" not found`);
    },
    watchRun: async function* (request) {
      checkRunId(request.runId);
      if (request.afterSequence < 0) throw invalidArgument('after_sequence', `got ${request.afterSequence}, expected >= 0`);
      yield* [];
      throw notFound(`run "${request.runId}" not found`);
    },
  };
}
