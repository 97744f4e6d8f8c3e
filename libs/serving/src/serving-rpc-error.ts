import { WeightsAllocationError, WeightsUploadError } from '@posttrain/proto';
import { failedPrecondition, invalidArgument, resourceExhausted, RpcError, status } from '@posttrain/rpc';
import { ServingError } from './serving-error';

/** Maps domain errors to gRPC statuses; anything unknown is rethrown as is (INTERNAL). */
export function toRpcError(err: unknown): unknown {
  if (err instanceof ServingError) {
    switch (err.kind) {
      case 'invalid-argument':
        return invalidArgument(err.field, err.problem);
      case 'failed-precondition':
        return failedPrecondition(err.message);
      case 'resource-exhausted':
        return resourceExhausted(err.message);
      case 'cancelled':
        return new RpcError(status.CANCELLED, err.message);
    }
  }
  if (err instanceof WeightsAllocationError) return resourceExhausted(err.message);
  if (err instanceof WeightsUploadError) return invalidArgument(err.field, err.message.slice(err.field.length + 2));
  return err;
}
