import { ExtractionMode, type RewardComponent, type RewardModelRule } from '@posttrain/proto';
import { compileExactMatch } from './exact-match-rule';
import { compileFormatRule } from './format-rule';
import { compileLengthPenalty } from './length-penalty-rule';
import { compileNumericMatch } from './numeric-match-rule';
import { compileRegexRule } from './regex-rule';
import { RewardValidationError, showValue } from './reward-errors';
import { requireFinite, requireString, type RuleContext, type RuleScorer } from './rule-scorer';
import { SUPPORTED_RULES, RULE_CASES, type RuleName } from './supported-rules';

/** Reward-model parameters after validation: value = (raw - shift) * scale. */
export interface RewardModelParams {
  readonly expectedModelId: string;
  readonly shift: number;
  /** Already resolved: a proto 0 is 1 here. */
  readonly scale: number;
}

interface CompiledBase {
  readonly name: string;
  readonly weight: number;
  readonly ruleName: RuleName;
  /** Path of the component, e.g. `components[2]`. */
  readonly path: string;
  /** Path of the rule's parameters, e.g. `components[2].reward_model`. */
  readonly paramsPath: string;
  /** Path of a regular expression from the request that scoring runs, if any (it is run under a time limit). */
  readonly regexField?: string;
}

/** A validated component, ready to score. */
export type CompiledComponent =
  | (CompiledBase & { readonly kind: 'rule'; readonly score: RuleScorer })
  | (CompiledBase & { readonly kind: 'reward_model'; readonly rewardModel: RewardModelParams });

/** Where fields of one component are reported: the component path, and the params path of a rule. */
export interface ComponentPaths {
  readonly component: string;
  readonly params: (ruleName: RuleName) => string;
}

const MAX_NAME_LENGTH = 100;

function compileRewardModel(rule: RewardModelRule, paramsPath: string): RewardModelParams {
  const expectedModelId = requireString(rule.expectedModelId, `${paramsPath}.expected_model_id`);
  const shift = requireFinite(rule.shift ?? 0, `${paramsPath}.shift`);
  const scale = requireFinite(rule.scale ?? 0, `${paramsPath}.scale`);
  return { expectedModelId, shift, scale: scale === 0 ? 1 : scale };
}

/** Validates one component and compiles it; every error names the exact field under `paths`. */
export function compileComponentAt(component: RewardComponent, paths: ComponentPaths): CompiledComponent {
  const at = paths.component;
  if (typeof component !== 'object' || component === null) {
    throw new RewardValidationError(at, `got ${showValue(component)}, expected a reward component object`);
  }
  const { name, weight, rule } = component;
  if (typeof name !== 'string' || name === '') {
    throw new RewardValidationError(`${at}.name`, `got ${showValue(name)}, expected a non-empty name (it becomes the metric "rewards/<name>")`);
  }
  if (name.length > MAX_NAME_LENGTH || /[\s\p{Cc}]/u.test(name)) {
    throw new RewardValidationError(`${at}.name`, `got ${showValue(name)}, expected at most ${MAX_NAME_LENGTH} characters without whitespace or control characters`);
  }
  if (typeof weight !== 'number' || !Number.isFinite(weight)) {
    throw new RewardValidationError(`${at}.weight`, `got ${showValue(weight)}, expected a finite number`);
  }
  const ruleName = rule ? SUPPORTED_RULES.find((r) => RULE_CASES[r] === rule.$case) : undefined;
  if (rule === undefined || rule === null || ruleName === undefined || typeof rule.value !== 'object' || rule.value === null) {
    throw new RewardValidationError(`${at}.rule`, `no rule set, expected one of ${SUPPORTED_RULES.join(', ')}`);
  }
  const paramsPath = paths.params(ruleName);
  const base = { name, weight, ruleName, path: at, paramsPath };
  if (rule.$case === 'rewardModel') {
    return { ...base, kind: 'reward_model', rewardModel: compileRewardModel(rule.value, paramsPath) };
  }
  const ctx: RuleContext = { paramsPath, describe: `${at} (${JSON.stringify(name)}, ${ruleName})` };
  const extractionRegex = `${paramsPath}.extraction.pattern`;
  switch (rule.$case) {
    case 'exactMatch': {
      const score = compileExactMatch(rule.value, ctx);
      return { ...base, kind: 'rule', score, regexField: rule.value.extraction?.mode === ExtractionMode.REGEX ? extractionRegex : undefined };
    }
    case 'numericMatch': {
      const score = compileNumericMatch(rule.value, ctx);
      return { ...base, kind: 'rule', score, regexField: rule.value.extraction?.mode === ExtractionMode.REGEX ? extractionRegex : undefined };
    }
    case 'regex':
      return { ...base, kind: 'rule', score: compileRegexRule(rule.value, ctx), regexField: `${paramsPath}.pattern` };
    case 'format':
      return { ...base, kind: 'rule', score: compileFormatRule(rule.value, ctx) };
    case 'lengthPenalty':
      return { ...base, kind: 'rule', score: compileLengthPenalty(rule.value, ctx) };
  }
}

/** Refuses an empty list and duplicate names; `pathOf(i)` is where component i is reported. */
export function checkComponentList(components: readonly CompiledComponent[], listField: string): void {
  if (components.length === 0) {
    throw new RewardValidationError(listField, 'got an empty list, expected at least one reward component');
  }
  const seen = new Map<string, string>();
  for (const c of components) {
    const first = seen.get(c.name);
    if (first !== undefined) {
      throw new RewardValidationError(`${c.path}.name`, `got ${JSON.stringify(c.name)}, already the name of ${first}; names must be unique`);
    }
    seen.set(c.name, c.path);
  }
}

/**
 * Validates and compiles wire components (`RewardComponent` from
 * @posttrain/proto). Errors are {@link RewardValidationError}s whose field is
 * the exact path under `fieldPrefix`, with proto field names:
 * `components[1].regex.pattern`, `components[0].weight`, `components[2].rule`.
 */
export function compileRewardComponents(components: readonly RewardComponent[], fieldPrefix = 'components'): CompiledComponent[] {
  if (!Array.isArray(components)) {
    throw new RewardValidationError(fieldPrefix, `got ${showValue(components)}, expected a list of reward components`);
  }
  const compiled = components.map((component, i) =>
    compileComponentAt(component, { component: `${fieldPrefix}[${i}]`, params: (ruleName) => `${fieldPrefix}[${i}].${ruleName}` }),
  );
  checkComponentList(compiled, fieldPrefix);
  return compiled;
}

/**
 * Checks every parameter of every component, throwing a
 * {@link RewardValidationError} that names the first bad field, e.g.
 * `components[1].regex.pattern: invalid regular expression: ...`. The list must
 * be non-empty with unique names.
 */
export function validateRewardComponents(components: readonly RewardComponent[], fieldPrefix = 'components'): void {
  compileRewardComponents(components, fieldPrefix);
}
