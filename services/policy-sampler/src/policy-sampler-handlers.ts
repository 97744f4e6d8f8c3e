import { BatchStats, GenerateResponse, GetInfoRequest, LogProbsResponse, PolicySamplerInfo, WeightsAck, WeightsAssembler, encodeTensor, type PolicySamplerService, type WeightsChunk } from '@posttrain/proto';
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
      const assembler = new WeightsAssembler(state.maxUploadBytes);
      try {
        for await (const chunk of chunks) {
          const first = assembler.weightsHeader === undefined;
          assembler.push(chunk);
          if (first && assembler.weightsHeader) {
            validateWeightsHeader(assembler.weightsHeader, state.maxUploadBytes);
            needEngine(state).checkUploadHeader(toWeightsUpload(assembler.weightsHeader));
          }
        }
        const { header, bytes } = assembler.finish();
        const ack = await needEngine(state).loadWeights(toWeightsUpload(header), bytes);
        return WeightsAck.fromPartial({ version: ack.version, bytesReceived: assembler.bytesReceived, duplicate: ack.duplicate, tensorsLoaded: ack.tensorsLoaded });
      } catch (err) {
        throw toRpcError(err);
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
