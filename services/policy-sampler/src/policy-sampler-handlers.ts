import { BatchStats, GenerateResponse, GetInfoRequest, LogProbsResponse, PolicySamplerInfo, WeightsAck, WeightsSpool, encodeTensor, type PolicySamplerService, type WeightsChunk } from '@posttrain/proto';
import { failedPrecondition, toRpcError, validateGenerateRequest, validateLogProbsRequest, validateWeightsHeader, type ServiceHandlers } from '@posttrain/rpc';
import { describeServedModel, type GenerationEngine } from '@posttrain/serving';
import { toGenerationRequest, toWeightsUpload, toWireCompletion, toWireWeightsFormat } from './wire-conversion';

export interface PolicySamplerState {
  replicaId: string;
  maxNewTokens: number;
  maxQueueDepth: number;
  maxBatchSequences: number;
  maxBatchTokens: number;
  maxRequestSequences: number;
  maxUploadBytes: number;
  /** Uploads up to this size are assembled in memory; larger ones are written to a file under uploadDir. */
  uploadMemoryBytes: number;
  uploadDir: string;
  /** Set once the model directory is loaded; null while loading or when the replica was started without --model. */
  engine: GenerationEngine | null;
}

function needEngine(state: PolicySamplerState): GenerationEngine {
  if (!state.engine) throw failedPrecondition('no model loaded on this replica (start it with --model DIR or POSTTRAIN_MODEL_DIR, and wait for SERVING)');
  return state.engine;
}

/**
 * PolicySampler handlers: decode and validate, convert to the domain types of
 * the generation engine (@posttrain/serving; wire-conversion.ts), call it,
 * convert back and encode. Validation that needs no model runs first, so
 * malformed input is INVALID_ARGUMENT on every replica; model methods on a
 * replica without a model are FAILED_PRECONDITION.
 */
export function createPolicySamplerHandlers(state: PolicySamplerState): ServiceHandlers<typeof PolicySamplerService> {
  const vocab = () => (state.engine ? { vocabSize: state.engine.served.model.config.vocabSize } : {});
  return {
    generate: async function* (request, ctx) {
      validateGenerateRequest(request, { maxNewTokens: state.maxNewTokens, maxSamplesPerPrompt: state.maxRequestSequences, ...vocab() });
      const engine = needEngine(state);
      try {
        for await (const completions of engine.submit(toGenerationRequest(request, engine.served), ctx.signal)) yield GenerateResponse.fromPartial({ completions: completions.map(toWireCompletion) });
      } catch (err) {
        throw toRpcError(err);
      }
    },
    computeLogProbs: async (request) => {
      validateLogProbsRequest(request, { maxSequences: state.maxRequestSequences, ...vocab() });
      const engine = needEngine(state);
      try {
        const out = await engine.computeLogProbs({ pairs: request.sequences, temperature: request.temperature, returnEntropies: request.returnEntropies, minWeightsVersion: request.minWeightsVersion });
        return LogProbsResponse.fromPartial({
          logprobs: encodeTensor(out.logprobs, [out.lengths.length, out.maxLength]),
          completionLengths: out.lengths,
          entropies: out.entropies ? encodeTensor(out.entropies, [out.lengths.length, out.maxLength]) : undefined,
          weightsVersion: out.weightsVersion,
        });
      } catch (err) {
        throw toRpcError(err);
      }
    },
    loadWeights: async (chunks: AsyncIterable<WeightsChunk>) => {
      const spool = new WeightsSpool({ maxBytes: state.maxUploadBytes, memoryBytes: state.uploadMemoryBytes, dir: state.uploadDir });
      try {
        for await (const chunk of chunks) {
          // The header is checked in full (and against the model) before memory or a file is taken for the data.
          if (spool.weightsHeader === undefined && chunk.chunk?.$case === 'header') {
            validateWeightsHeader(chunk.chunk.value, state.maxUploadBytes);
            needEngine(state).checkUploadHeader(toWeightsUpload(chunk.chunk.value));
          }
          await spool.push(chunk);
        }
        const done = await spool.finish();
        const ack = await needEngine(state).loadWeights(toWeightsUpload(done.header), done.path === undefined ? done.bytes : { path: done.path });
        return WeightsAck.fromPartial({ version: ack.version, bytesReceived: done.bytesReceived, duplicate: ack.duplicate, tensorsLoaded: ack.tensorsLoaded });
      } catch (err) {
        throw toRpcError(err);
      } finally {
        await spool.dispose(); // the old weights keep serving on any failure; the temporary file goes either way
      }
    },
    getInfo: async (_request: GetInfoRequest) => {
      const engine = state.engine;
      const info = engine?.info();
      return PolicySamplerInfo.fromPartial({
        model: engine ? describeServedModel(engine.served) : undefined,
        weightsVersion: info?.weightsVersion ?? 0,
        weightsFormat: info && toWireWeightsFormat(info.weightsFormat),
        queueDepth: info?.queueDepth ?? 0,
        batch: info ? BatchStats.fromPartial(info.stats) : undefined,
        maxBatchSequences: state.maxBatchSequences,
        maxRequestSequences: state.maxRequestSequences,
        maxQueueDepth: state.maxQueueDepth,
        maxNewTokens: state.maxNewTokens,
        replicaId: state.replicaId,
      });
    },
  };
}
