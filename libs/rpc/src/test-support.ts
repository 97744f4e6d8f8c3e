import type { MethodDefinition } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { loadPackageDefinition, credentials, type Client, type ClientDuplexStream } from "@grpc/grpc-js";

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

/** A reflection v1 client, built from the proto that @grpc/reflection ships. */
export function reflectionClient(address: string): Client & { ServerReflectionInfo(): ClientDuplexStream<object, object> } {
  const protoPath = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
  const def = protoLoader.loadSync(protoPath, { keepCase: true });
  const pkg = loadPackageDefinition(def) as unknown as { grpc: { reflection: { v1: { ServerReflection: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => Client & { ServerReflectionInfo(): ClientDuplexStream<object, object> } } } } };
  return new pkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
}

/** Lists services through reflection. */
export function listServices(address: string): Promise<string[]> {
  const client = reflectionClient(address);
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on('data', (msg: { list_services_response?: { service: { name: string }[] }; error_response?: { error_message: string } }) => {
      if (msg.error_response) reject(new Error(msg.error_response.error_message));
      else resolve((msg.list_services_response?.service ?? []).map((s) => s.name));
      call.end();
      client.close();
    });
    call.on('error', reject);
    call.write({ list_services: '*' });
  });
}
