import type { MethodDefinition } from '@grpc/grpc-js';

/** JSON-coded method definitions for tests of the server and client machinery alone. */
function jsonMethod<Req, Res, RS extends boolean, SS extends boolean>(path: string, requestStream: RS, responseStream: SS): MethodDefinition<Req, Res> & { requestStream: RS; responseStream: SS } {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: (v: Req) => Buffer.from(JSON.stringify(v)),
    requestDeserialize: (b: Buffer) => JSON.parse(b.toString()) as Req,
    responseSerialize: (v: Res) => Buffer.from(JSON.stringify(v)),
    responseDeserialize: (b: Buffer) => JSON.parse(b.toString()) as Res,
  };
}

export interface EchoRequest {
  text: string;
  delayMs?: number;
  fail?: number;
}
export interface EchoResponse {
  text: string;
  replica: string;
}

export const EchoService = {
  echo: jsonMethod<EchoRequest, EchoResponse, false, false>('/test.Echo/Echo', false, false),
  repeat: jsonMethod<EchoRequest, EchoResponse, false, true>('/test.Echo/Repeat', false, true),
  join: jsonMethod<EchoRequest, EchoResponse, true, false>('/test.Echo/Join', true, false),
} as const;

