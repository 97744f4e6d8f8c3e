import { Metadata, status, type ServiceError } from '@grpc/grpc-js';

/**
 * An error that maps to a gRPC status. Handlers throw these; the server
 * wrapper turns them into the call's status. Anything else becomes INTERNAL.
 * Codes: bad input INVALID_ARGUMENT (naming the field), stale
 * weights or a missing model FAILED_PRECONDITION, a full queue
 * RESOURCE_EXHAUSTED; only UNAVAILABLE is retried by clients.
 */
export class RpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/** INVALID_ARGUMENT for one field: `field: problem`. */
export function invalidArgument(field: string, problem: string): RpcError {
  return new RpcError(status.INVALID_ARGUMENT, `${field}: ${problem}`);
}

export function failedPrecondition(message: string): RpcError {
  return new RpcError(status.FAILED_PRECONDITION, message);
}

export function resourceExhausted(message: string): RpcError {
  return new RpcError(status.RESOURCE_EXHAUSTED, message);
}

export function notFound(message: string): RpcError {
  return new RpcError(status.NOT_FOUND, message);
}

export function unimplemented(method: string, why: string): RpcError {
  return new RpcError(status.UNIMPLEMENTED, `${method} is not implemented: ${why}`);
}

/**
 * Longest status message sent. It travels in the grpc-message trailer, and a
 * message over the client's metadata limit (8 KiB by default) replaces the
 * real status with a metadata error; a long one also tends to echo input.
 */
export const MAX_STATUS_MESSAGE_CHARS = 2000;

/** Converts any thrown value into a grpc-js ServiceError for the call's callback/stream; the message is capped. */
export function toServiceError(err: unknown): ServiceError {
  const code = err instanceof RpcError ? err.code : isServiceError(err) ? err.code : status.INTERNAL;
  const full = err instanceof Error ? err.message : String(err);
  const message = full.length > MAX_STATUS_MESSAGE_CHARS ? `${full.slice(0, MAX_STATUS_MESSAGE_CHARS)}... (${full.length - MAX_STATUS_MESSAGE_CHARS} more characters)` : full;
  const out = new Error(message) as ServiceError;
  out.code = code;
  out.details = message;
  out.metadata = new Metadata();
  return out;
}

export function isServiceError(err: unknown): err is ServiceError {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number' && 'details' in err;
}

/** The status name for logs and metrics, e.g. `INVALID_ARGUMENT`. */
export function statusName(code: number): string {
  return status[code] ?? `CODE_${code}`;
}
