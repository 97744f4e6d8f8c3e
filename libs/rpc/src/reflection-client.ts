import * as protoLoader from '@grpc/proto-loader';
import { loadPackageDefinition, type ChannelCredentials, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { channelCredentials, clientTlsFromEnv } from './tls';

/** A reflection v1 client, built from the proto that @grpc/reflection ships; TLS from the environment as every client. */
function reflectionClient(address: string): Client & { ServerReflectionInfo(): ClientDuplexStream<object, object> } {
  const protoPath = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
  const def = protoLoader.loadSync(protoPath, { keepCase: true });
  const pkg = loadPackageDefinition(def) as unknown as { grpc: { reflection: { v1: { ServerReflection: new (a: string, c: ChannelCredentials) => Client & { ServerReflectionInfo(): ClientDuplexStream<object, object> } } } } };
  return new pkg.grpc.reflection.v1.ServerReflection(address, channelCredentials(clientTlsFromEnv()));
}

/** Lists the services a server offers, through gRPC server reflection (v1), as grpcurl does. */
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
