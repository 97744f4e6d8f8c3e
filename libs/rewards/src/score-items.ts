import type { ComponentScore, ItemScore, RewardComponent, ScoreItem } from '@posttrain/proto';
import { RewardBudgetError, RewardPreconditionError, RewardValidationError, showValue } from './reward-errors';
import { checkRequestLimits, DEFAULT_REQUEST_LIMITS, type RequestLimits } from './request-limits';
import { runWithTimeLimit, TimeLimitExceededError } from './run-with-time-limit';
import { compileRewardComponents, type CompiledComponent } from './validate-reward-components';

/**
 * The served reward model: raw scalar-head scores, one per item, in item
 * order. The reward service renders each (prompt or prompt_messages,
 * completion) and runs the model; shift and scale are applied here.
 */
export type RewardModelFn = (items: readonly ScoreItem[]) => Promise<number[]>;

export interface ScoreOptions {
  /** Scores items with the served reward model; without it a reward_model component is a RewardPreconditionError. */
  readonly rewardModel?: RewardModelFn;
  /** Id of the served reward model, checked against RewardModelRule.expected_model_id when that is set. */
  readonly rewardModelId?: string;
  /** Field path of the components in errors; default `components`. */
  readonly componentsField?: string;
  /** Field path of the items in errors; default `items`. */
  readonly itemsField?: string;
  /**
   * Wall-clock limit, per component and call, on components that run a
   * regular expression from the request (regex rules, REGEX extraction);
   * default {@link DEFAULT_REGEX_TIME_LIMIT_MS}. Past it the component is
   * refused as a RewardValidationError on its pattern (catastrophic
   * backtracking), instead of blocking the process.
   */
  readonly regexTimeLimitMs?: number;
  /**
   * Wall-clock budget of all the request's regular expressions together
   * (ms); default {@link DEFAULT_SCORE_TIME_BUDGET_MS}. Past it the request
   * fails with a RewardBudgetError (RESOURCE_EXHAUSTED).
   */
  readonly timeBudgetMs?: number;
  /** Component count and pattern bounds; defaults {@link DEFAULT_REQUEST_LIMITS}. */
  readonly limits?: Partial<RequestLimits>;
}

/** Default of {@link ScoreOptions.timeBudgetMs}. */
export const DEFAULT_SCORE_TIME_BUDGET_MS = 5000;

/** Default of {@link ScoreOptions.regexTimeLimitMs}: generous for any sane pattern on a batch of completions. */
export const DEFAULT_REGEX_TIME_LIMIT_MS = 1000;

/** weight * value, with -0 written as 0 so that breakdowns print and compare cleanly. */
function weigh(weight: number, value: number): number {
  const w = weight * value;
  return w === 0 ? 0 : w;
}

function checkRewardModel(components: readonly CompiledComponent[], options: ScoreOptions): void {
  for (const c of components) {
    if (c.kind !== 'reward_model') continue;
    if (options.rewardModel === undefined) {
      throw new RewardPreconditionError(c.paramsPath, `component ${JSON.stringify(c.name)} needs a reward model, but none is served here (rules only)`);
    }
    const expected = c.rewardModel.expectedModelId;
    if (expected !== '' && expected !== options.rewardModelId) {
      const served = options.rewardModelId === undefined ? 'a model without an id' : JSON.stringify(options.rewardModelId);
      throw new RewardPreconditionError(`${c.paramsPath}.expected_model_id`, `expects reward model ${JSON.stringify(expected)}, but ${served} is served`);
    }
  }
}

/**
 * Scores every item with every component. Per item: one ComponentScore per
 * component in component order, `{ name, value, weighted: weight * value }`,
 * and `reward` = the sum of the weighted values. Rule components are computed
 * first, component by component over the batch (those that run a request's
 * regular expression under a time limit, see {@link ScoreOptions.regexTimeLimitMs}),
 * so an item that lacks what a rule needs fails before the (costly) reward
 * model is called; the reward model is called once per batch however many
 * reward_model components there are. An empty item list gives an
 * empty result (the service refuses empty requests itself).
 *
 * Throws RewardValidationError (INVALID_ARGUMENT) for a bad component or item,
 * RewardPreconditionError (FAILED_PRECONDITION) for a reward_model component
 * that this caller cannot serve, and a plain Error if the reward model returns
 * the wrong number of scores or a non-finite one.
 */
export async function scoreItems(
  items: readonly ScoreItem[],
  components: readonly RewardComponent[],
  options: ScoreOptions = {},
): Promise<ItemScore[]> {
  const itemsField = options.itemsField ?? 'items';
  checkRequestLimits(components, { ...DEFAULT_REQUEST_LIMITS, ...options.limits }, options.componentsField ?? 'components');
  const compiled = compileRewardComponents(components, options.componentsField ?? 'components');
  checkRewardModel(compiled, options);
  if (!Array.isArray(items)) throw new RewardValidationError(itemsField, `got ${showValue(items)}, expected a list of items`);

  const limitMs = options.regexTimeLimitMs ?? DEFAULT_REGEX_TIME_LIMIT_MS;
  if (!Number.isFinite(limitMs) || limitMs <= 0) throw new Error(`regexTimeLimitMs: got ${showValue(limitMs)}, expected a number > 0`);
  const budgetMs = options.timeBudgetMs ?? DEFAULT_SCORE_TIME_BUDGET_MS;
  if (!Number.isFinite(budgetMs) || budgetMs <= 0) throw new Error(`timeBudgetMs: got ${showValue(budgetMs)}, expected a number > 0`);
  const began = Date.now();
  const overBudget = (at: string) =>
    new RewardBudgetError(`the request's regular expressions took more than its ${budgetMs} ms budget in total (stopped at ${at}); send fewer regex components or items per request`);
  items.forEach((item, i) => {
    if (typeof item?.completion !== 'string') {
      throw new RewardValidationError(`${itemsField}[${i}].completion`, `got ${showValue(item?.completion)}, expected a string`);
    }
  });

  // values[i][j]: component j on item i; NaN marks reward-model slots, filled below.
  const values: number[][] = items.map(() => compiled.map(() => Number.NaN));
  for (const [j, c] of compiled.entries()) {
    if (c.kind !== 'rule') continue;
    const column = () => items.forEach((item, i) => (values[i][j] = c.score(item, `${itemsField}[${i}]`)));
    if (c.regexField === undefined) {
      column();
      continue;
    }
    const remaining = budgetMs - (Date.now() - began);
    if (remaining <= 0) throw overBudget(c.regexField);
    try {
      runWithTimeLimit(column, Math.min(limitMs, remaining));
    } catch (err) {
      if (!(err instanceof TimeLimitExceededError)) throw err;
      if (remaining < limitMs) throw overBudget(c.regexField);
      throw new RewardValidationError(
        c.regexField,
        `matching ${items.length} completion(s) took longer than ${limitMs} ms and was stopped; the pattern likely backtracks catastrophically (nested quantifiers such as (a+)+), simplify it`,
      );
    }
  }

  const rmComponents = compiled.filter((c) => c.kind === 'reward_model');
  if (rmComponents.length > 0 && items.length > 0 && options.rewardModel) {
    const raw = await options.rewardModel(items);
    if (!Array.isArray(raw) || raw.length !== items.length) {
      throw new Error(`reward model returned ${Array.isArray(raw) ? raw.length : showValue(raw)} scores for ${items.length} items`);
    }
    raw.forEach((r, i) => {
      if (typeof r !== 'number' || !Number.isFinite(r)) {
        throw new Error(`reward model returned ${showValue(r)} for ${itemsField}[${i}] (item id ${JSON.stringify(items[i].id)}), expected a finite score`);
      }
      compiled.forEach((c, j) => {
        if (c.kind === 'reward_model') values[i][j] = (r - c.rewardModel.shift) * c.rewardModel.scale;
      });
    });
  }

  return items.map((item, i) => {
    const breakdown: ComponentScore[] = compiled.map((c, j) => ({ name: c.name, value: values[i][j], weighted: weigh(c.weight, values[i][j]) }));
    const reward = breakdown.reduce((sum, s) => sum + s.weighted, 0);
    return { id: item.id, reward: reward === 0 ? 0 : reward, components: breakdown };
  });
}
