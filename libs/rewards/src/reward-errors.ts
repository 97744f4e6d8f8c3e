/**
 * Bad input to the reward rules: a malformed component (bad regex, negative
 * tolerance, unknown rule) or an item that lacks what a rule needs (ground
 * truth, token ids). `field` is the exact path of the offending field
 * (`components[1].regex.pattern`, `items[3].ground_truth`); the reward service
 * maps this error to INVALID_ARGUMENT with the message unchanged.
 */
export class RewardValidationError extends Error {
  /** Path of the offending field, e.g. `components[0].weight`. */
  readonly field: string;
  /** What is wrong with it, without the path. */
  readonly problem: string;

  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.name = 'RewardValidationError';
    this.field = field;
    this.problem = problem;
  }
}

/**
 * The request is well formed but cannot be served here: a reward-model
 * component without a reward model, or a reward model other than the one the
 * component expects. The reward service maps it to FAILED_PRECONDITION.
 */
export class RewardPreconditionError extends Error {
  /** Path of the component that cannot be served, e.g. `components[2].reward_model`. */
  readonly field: string;

  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.name = 'RewardPreconditionError';
    this.field = field;
  }
}

/**
 * A Score request that ran out of its total time budget: each component
 * stayed under its own limit, but together they took too long. The reward
 * service maps it to RESOURCE_EXHAUSTED.
 */
export class RewardBudgetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RewardBudgetError';
  }
}

/** A short, bounded rendering of a value for error messages: `got NaN`, `got string "abc"`. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return `string ${JSON.stringify(shown)}`;
  }
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
