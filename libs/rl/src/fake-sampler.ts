/**
 * Fake PolicySampler replicas for the pool's specs, in the test's process
 * (real gRPC on loopback): each answers with completions derived from the
 * request's seed, so a re-issued prompt can be recognised, and can be told to
 * fail in the middle of a stream, hang, or freeze. Like a real replica it
 * refuses a Generate whose min_weights_version is above its loaded version
 * (FAILED_PRECONDITION) and reports its version in GetInfo; `restart()` drops
 * back to version 0 as a restarted replica does.
 */
import { FinishReason, PolicySamplerInfo, PolicySamplerService, WeightsAssembler } from '@posttrain/proto';
import type { Completion, GenerateRequest, GenerateResponse, WeightsAck, WeightsChunk } from '@posttrain/proto';
import { PosttrainServer, RpcError, status } from '@posttrain/rpc';
import type { ServiceHandlers } from '@posttrain/rpc';
import { createLogger } from '@posttrain/telemetry';

export type Mode = 'ok' | 'fail-mid-stream' | 'short-stream' | 'hang' | 'wrong-ack' | 'frozen';

export interface Fake {
  server: PosttrainServer;
  address: string;
  mode: Mode;
  version: number;
  requests: GenerateRequest[];
  /** The loaded version when each request arrived (same order as requests). */
  versionAtRequest: number[];
  uploads: number;
  /** Back to the initial weights (version 0), as after a restart. */
  restart(): void;
}

function completionFor(req: GenerateRequest, sampleIndex: number, version: number): Completion {
  const seed = req.sampling!.seed!;
  const ids = [3 + (seed % 50), 3 + sampleIndex];
  return {
    promptIndex: 0,
    sampleIndex,
    promptTokenIds: req.prompts[0].input?.$case === 'tokenIds' ? req.prompts[0].input.value.ids : [],
    tokenIds: ids,
    text: ids.join(' '),
    logprobs: [-0.5, -0.25],
    finishReason: FinishReason.STOP,
    stopString: '',
    weightsVersion: version,
  };
}

export async function startFake(mode: Mode, version = 0): Promise<Fake> {
  const server = new PosttrainServer({ name: 'fake-sampler', host: '127.0.0.1', port: 0, shutdownGraceMs: 100, log: createLogger({ service: 'fake', level: 'error' }) });
  const fake: Fake = { server, address: '', mode, version, requests: [], versionAtRequest: [], uploads: 0, restart: () => (fake.version = 0) };
  const handlers: ServiceHandlers<typeof PolicySamplerService> = {
    generate: async function* (req: GenerateRequest, ctx): AsyncIterable<GenerateResponse> {
      fake.requests.push(req);
      fake.versionAtRequest.push(fake.version);
      if (req.minWeightsVersion !== undefined && fake.version < req.minWeightsVersion) {
        throw new RpcError(status.FAILED_PRECONDITION, `loaded weights version ${fake.version} is older than min_weights_version ${req.minWeightsVersion}`);
      }
      if (fake.mode === 'hang' || fake.mode === 'frozen') {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        return;
      }
      for (let s = 0; s < req.n; s++) {
        if (s === 1 && fake.mode === 'fail-mid-stream') throw new RpcError(status.UNAVAILABLE, 'replica going away');
        if (s === 1 && fake.mode === 'short-stream') return;
        yield { completions: [completionFor(req, s, fake.version)] };
      }
    },
    computeLogProbs: async () => {
      throw new RpcError(status.UNIMPLEMENTED, 'not in the fake');
    },
    loadWeights: async (chunks: AsyncIterable<WeightsChunk>, ctx): Promise<WeightsAck> => {
      fake.uploads++;
      if (fake.mode === 'frozen') {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        throw ctx.signal.reason;
      }
      const assembler = new WeightsAssembler(1 << 20);
      for await (const c of chunks) assembler.push(c);
      const { header, bytes } = assembler.finish();
      fake.version = header.version;
      return { version: fake.mode === 'wrong-ack' ? header.version - 1 : header.version, bytesReceived: bytes.byteLength, duplicate: false, tensorsLoaded: 1 };
    },
    getInfo: async () => PolicySamplerInfo.fromPartial({ weightsVersion: fake.version }),
  };
  server.add('posttrain.v1.PolicySampler', PolicySamplerService, handlers);
  fake.address = (await server.start()).address;
  server.setServing(true);
  return fake;
}
