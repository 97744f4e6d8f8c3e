import { status } from '@grpc/grpc-js';
import { WeightsAllocationError, WeightsUploadError } from '@posttrain/proto';
import { failedPrecondition, invalidArgument, resourceExhausted, RpcError } from './errors';

/** The status classes a domain error may carry (@posttrain/serving's ServingError has this shape). */
export type DomainErrorKind = 'invalid-argument' | 'failed-precondition' | 'resource-exhausted' | 'cancelled';

/**
 * An error of a library that knows nothing of gRPC but says which status it
 * means: its kind, the field at fault as the wire spells it ('' when no single
 * field is), and the problem without the field.
 */
export interface DomainError extends Error {
  readonly kind: DomainErrorKind;
  readonly field: string;
  readonly problem: string;
}

const DOMAIN_KINDS: readonly string[] = ['invalid-argument', 'failed-precondition', 'resource-exhausted', 'cancelled'] satisfies readonly DomainErrorKind[];

export function isDomainError(err: unknown): err is DomainError {
  if (!(err instanceof Error)) return false;
  const fields = err as Error & { kind?: unknown; field?: unknown; problem?: unknown };
  return typeof fields.kind === 'string' && DOMAIN_KINDS.includes(fields.kind) && typeof fields.field === 'string' && typeof fields.problem === 'string';
}

/**
 * Maps what the serving handlers catch to a gRPC status: a domain error by its
 * kind, a weights upload that cannot be allocated to RESOURCE_EXHAUSTED and a
 * malformed one to INVALID_ARGUMENT; anything unknown is returned as is (the
 * server reports it as INTERNAL).
 */
export function toRpcError(err: unknown): unknown {
  if (isDomainError(err)) {
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
