import type { Metadata, MethodDefinition } from '@grpc/grpc-js';
import type { Logger, Span } from '@posttrain/telemetry';

/** What a handler knows about its call, besides the request. */
export interface CallContext {
  /** Full method path, e.g. `/posttrain.v1.PolicySampler/Generate`. */
  method: string;
  metadata: Metadata;
  /** The client's deadline, if it set one. */
  deadline: Date | undefined;
  /** Aborted when the client cancels, the deadline passes, or the server is forced down. */
  signal: AbortSignal;
  log: Logger;
  span: Span;
}

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res> | Res;
export type ServerStreamHandler<Req, Res> = (request: Req, ctx: CallContext) => AsyncIterable<Res>;
export type ClientStreamHandler<Req, Res> = (requests: AsyncIterable<Req>, ctx: CallContext) => Promise<Res>;
export type BidiStreamHandler<Req, Res> = (requests: AsyncIterable<Req>, ctx: CallContext) => AsyncIterable<Res>;

/** Any grpc-js method definition (ts-proto's generated service objects are made of these). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyMethod = MethodDefinition<any, any>;
export type AnyServiceDefinition = Record<string, AnyMethod>;

export type RequestOf<M> = M extends MethodDefinition<infer Req, infer _Res> ? Req : never;
export type ResponseOf<M> = M extends MethodDefinition<infer _Req, infer Res> ? Res : never;

/** The handler type a method needs, from its streaming flags. */
export type HandlerFor<M extends AnyMethod> = M['requestStream'] extends true
  ? M['responseStream'] extends true
    ? BidiStreamHandler<RequestOf<M>, ResponseOf<M>>
    : ClientStreamHandler<RequestOf<M>, ResponseOf<M>>
  : M['responseStream'] extends true
    ? ServerStreamHandler<RequestOf<M>, ResponseOf<M>>
    : UnaryHandler<RequestOf<M>, ResponseOf<M>>;

/** One handler per method of a service definition; the compiler checks every method is there. */
export type ServiceHandlers<D extends AnyServiceDefinition> = { [K in keyof D]: HandlerFor<D[K]> };
