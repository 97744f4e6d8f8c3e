/**
 * Errors of the serving domain, each with the status class a service maps it
 * to (@posttrain/rpc's toRpcError turns them into gRPC codes; nothing here
 * knows gRPC):
 * - `invalid-argument`: the request is malformed; `field` names the field as
 *   the wire spells it.
 * - `failed-precondition`: the request is fine but this replica cannot serve
 *   it now (no model loaded, weights too old, a stale weights version).
 * - `resource-exhausted`: the queue is full; try again later or elsewhere.
 * - `cancelled`: the caller went away.
 */
export type ServingErrorKind = 'invalid-argument' | 'failed-precondition' | 'resource-exhausted' | 'cancelled';

export class ServingError extends Error {
  override readonly name = 'ServingError';
  constructor(
    readonly kind: ServingErrorKind,
    /** The offending field as the wire spells it (`prompts[1].token_ids.ids`), or '' when no single field is at fault. */
    readonly field: string,
    /** What is wrong, without the field. */
    readonly problem: string,
  ) {
    super(field ? `${field}: ${problem}` : problem);
  }
}

export function invalidField(field: string, problem: string): ServingError {
  return new ServingError('invalid-argument', field, problem);
}

export function preconditionFailed(problem: string, field = ''): ServingError {
  return new ServingError('failed-precondition', field, problem);
}
