/**
 * @posttrain/rpc: what every posttrain service and client shares on the wire.
 * A server with health, reflection, tracing, logs, metrics and graceful
 * shutdown; typed clients with deadlines, round-robin over replicas and
 * retries on UNAVAILABLE only; service options (flags and POSTTRAIN_* variables,
 * parsed by @posttrain/flags); status-code errors.
 *
 * @example
 * ```ts
 * import { PosttrainServer, invalidArgument } from '@posttrain/rpc';
 * const server = new PosttrainServer({ name: 'reward', host: '127.0.0.1', port: 0, shutdownGraceMs: 5000 });
 * server.add('posttrain.v1.RewardScorer', RewardScorerService, { score: async (req) => { ... }, getInfo: async () => { ... } });
 * const { address } = await server.start();
 * server.setServing(true);
 * server.handleSignals();
 * ```
 */
export { PosttrainServer } from './server';
export type { ServerOptions, StartedServer } from './server';
export { RpcClient, createClient } from './client';
export type { ClientOptions, PerCallOptions } from './client';
export { RpcError, invalidArgument, failedPrecondition, resourceExhausted, notFound, unimplemented, toServiceError, isServiceError, statusName } from './errors';
export { toRpcError, isDomainError } from './domain-errors';
export type { DomainError, DomainErrorKind } from './domain-errors';
export { checkHealth, waitForServing } from './health';
export { loadServerTls, clientTlsFromEnv } from './tls';
export { makeTestCertificates } from './test-certificates';
export type { ServerTls, ClientTls } from './tls';
export type { HealthStatus } from './health';
export { protosDir, protoFiles } from './protos';
export { listServices } from './reflection-client';
export type { CallContext, UnaryHandler, ServerStreamHandler, ClientStreamHandler, BidiStreamHandler, ServiceHandlers, AnyServiceDefinition, RequestOf, ResponseOf } from './handlers';
export { status, Metadata } from '@grpc/grpc-js';
export { runService, mainOf, commonServiceConfig } from './run-service';
export type { ServiceDefinitionOptions, ServiceSetupContext, RunningService, CommonServiceConfig } from './run-service';
export { validateGenerateRequest, validateLogProbsRequest, validatePrompt, validateSamplingParams, validateWeightsHeader } from './validate-requests';
export type { RequestLimits } from './validate-requests';
export { checkMessageJson } from './strict-message-json';
