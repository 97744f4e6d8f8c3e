import {
  ExtractionMode,
  LengthUnit,
  type AnswerExtraction,
  type ExactMatchRule,
  type FormatRule,
  type LengthPenaltyRule,
  type Normalization,
  type NumericMatchRule,
  type RegexRule,
  type RewardComponent,
  type RewardModelRule,
} from '@posttrain/proto';
import { RewardValidationError, showValue } from './reward-errors';
import { RULE_CASES, SUPPORTED_RULES, type RuleName } from './supported-rules';
import { checkComponentList, compileComponentAt } from './validate-reward-components';

/**
 * One component as written in a run config or on the command line, keyed by
 * rule name, with snake_case parameters as in rewards.proto:
 *
 * ```yaml
 * - name: correct
 *   weight: 1
 *   rule: numeric_match
 *   params: { abs_tolerance: 1.0e-6, extraction: { mode: last_number } }
 * - { name: format, weight: 0.2, rule: format, params: { required_tags: [think, answer] } }
 * ```
 *
 * `name` defaults to the rule name, `weight` to 1 (unlike the wire, where an
 * unset weight is 0), `params` to the proto defaults. Enum values are written
 * by their short name (`last_number`, `characters`) or the full proto name
 * (`EXTRACTION_MODE_LAST_NUMBER`), case-insensitively.
 */
export interface RewardSpecEntry {
  name?: string;
  weight?: number;
  rule: RuleName;
  params?: Record<string, unknown>;
}

type Obj = Record<string, unknown>;

const ENTRY_KEYS = ['name', 'weight', 'rule', 'params'];

const PARAM_KEYS: Readonly<Record<RuleName, readonly string[]>> = {
  reward_model: ['expected_model_id', 'shift', 'scale'],
  exact_match: ['extraction', 'normalization'],
  numeric_match: ['extraction', 'abs_tolerance', 'rel_tolerance'],
  regex: ['pattern', 'flags', 'full_match', 'negate'],
  format: ['required_tags', 'answer_marker', 'nothing_outside_tags'],
  length_penalty: ['target_length', 'penalty_per_unit', 'max_penalty', 'unit'],
};
const EXTRACTION_KEYS = ['mode', 'pattern'];
const NORMALIZATION_KEYS = ['case_insensitive', 'collapse_whitespace', 'strip_chars'];

const EXTRACTION_MODES: Readonly<Record<string, ExtractionMode>> = {
  whole: ExtractionMode.WHOLE,
  after_marker: ExtractionMode.AFTER_MARKER,
  regex: ExtractionMode.REGEX,
  boxed: ExtractionMode.BOXED,
  last_number: ExtractionMode.LAST_NUMBER,
};
const LENGTH_UNITS: Readonly<Record<string, LengthUnit>> = {
  tokens: LengthUnit.TOKENS,
  characters: LengthUnit.CHARACTERS,
};

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The object at `field`, with no keys other than `allowed`; undefined reads as {}. */
function objectWithKeys(value: unknown, field: string, allowed: readonly string[], what: string): Obj {
  if (value === undefined) return {};
  if (!isObject(value)) throw new RewardValidationError(field, `got ${showValue(value)}, expected ${what}`);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new RewardValidationError(`${field}.${key}`, `unknown key ${JSON.stringify(key)}, expected one of ${allowed.join(', ')}`);
    }
  }
  return value;
}

function str(o: Obj, key: string, field: string): string {
  const v = o[key];
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new RewardValidationError(`${field}.${key}`, `got ${showValue(v)}, expected a string`);
  return v;
}

function num(o: Obj, key: string, field: string): number {
  const v = o[key];
  if (v === undefined) return 0;
  if (typeof v !== 'number') throw new RewardValidationError(`${field}.${key}`, `got ${showValue(v)}, expected a number`);
  return v;
}

function bool(o: Obj, key: string, field: string): boolean {
  const v = o[key];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new RewardValidationError(`${field}.${key}`, `got ${showValue(v)}, expected true or false`);
  return v;
}

function enumValue<E>(o: Obj, key: string, field: string, values: Readonly<Record<string, E>>, protoPrefix: string, unset: E): E {
  const v = o[key];
  if (v === undefined) return unset;
  const short = typeof v === 'string' ? v.toLowerCase().replace(new RegExp(`^${protoPrefix.toLowerCase()}`), '') : undefined;
  if (short === undefined || !Object.hasOwn(values, short)) {
    throw new RewardValidationError(`${field}.${key}`, `got ${showValue(v)}, expected one of ${Object.keys(values).join(', ')}`);
  }
  return values[short];
}

function extraction(params: Obj, field: string): AnswerExtraction | undefined {
  if (params.extraction === undefined) return undefined;
  const f = `${field}.extraction`;
  const o = objectWithKeys(params.extraction, f, EXTRACTION_KEYS, 'an object such as { mode: last_number }');
  return {
    mode: enumValue(o, 'mode', f, EXTRACTION_MODES, 'EXTRACTION_MODE_', ExtractionMode.UNSPECIFIED),
    pattern: str(o, 'pattern', f),
  };
}

function normalization(params: Obj, field: string): Normalization | undefined {
  if (params.normalization === undefined) return undefined;
  const f = `${field}.normalization`;
  const o = objectWithKeys(params.normalization, f, NORMALIZATION_KEYS, 'an object such as { case_insensitive: true }');
  return {
    caseInsensitive: bool(o, 'case_insensitive', f),
    collapseWhitespace: bool(o, 'collapse_whitespace', f),
    stripChars: str(o, 'strip_chars', f),
  };
}

function stringList(o: Obj, key: string, field: string): string[] {
  const v = o[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new RewardValidationError(`${field}.${key}`, `got ${showValue(v)}, expected a list of strings`);
  return v.map((s: unknown, i) => {
    if (typeof s !== 'string') throw new RewardValidationError(`${field}.${key}[${i}]`, `got ${showValue(s)}, expected a string`);
    return s;
  });
}

/** The typed rule of one spec entry; ranges and regexes are checked afterwards by the shared validator. */
function ruleOf(ruleName: RuleName, p: Obj, f: string): NonNullable<RewardComponent['rule']> {
  switch (ruleName) {
    case 'reward_model': {
      const value: RewardModelRule = { expectedModelId: str(p, 'expected_model_id', f), shift: num(p, 'shift', f), scale: num(p, 'scale', f) };
      return { $case: 'rewardModel', value };
    }
    case 'exact_match': {
      const value: ExactMatchRule = { extraction: extraction(p, f), normalization: normalization(p, f) };
      return { $case: 'exactMatch', value };
    }
    case 'numeric_match': {
      const value: NumericMatchRule = { extraction: extraction(p, f), absTolerance: num(p, 'abs_tolerance', f), relTolerance: num(p, 'rel_tolerance', f) };
      return { $case: 'numericMatch', value };
    }
    case 'regex': {
      const value: RegexRule = { pattern: str(p, 'pattern', f), flags: str(p, 'flags', f), fullMatch: bool(p, 'full_match', f), negate: bool(p, 'negate', f) };
      return { $case: 'regex', value };
    }
    case 'format': {
      const value: FormatRule = {
        requiredTags: stringList(p, 'required_tags', f),
        answerMarker: str(p, 'answer_marker', f),
        nothingOutsideTags: bool(p, 'nothing_outside_tags', f),
      };
      return { $case: 'format', value };
    }
    case 'length_penalty': {
      const value: LengthPenaltyRule = {
        targetLength: num(p, 'target_length', f),
        penaltyPerUnit: num(p, 'penalty_per_unit', f),
        maxPenalty: num(p, 'max_penalty', f),
        unit: enumValue(p, 'unit', f, LENGTH_UNITS, 'LENGTH_UNIT_', LengthUnit.UNSPECIFIED),
      };
      return { $case: 'lengthPenalty', value };
    }
  }
}

function entryToComponent(entry: unknown, at: string): RewardComponent {
  if (entry === undefined) throw new RewardValidationError(at, 'got nothing, expected a reward component');
  const e = objectWithKeys(entry, at, ENTRY_KEYS, 'an object such as { name: correct, weight: 1, rule: numeric_match, params: {...} }');
  const ruleName = e.rule;
  if (typeof ruleName !== 'string' || !(SUPPORTED_RULES as readonly string[]).includes(ruleName)) {
    const got = ruleName === undefined ? 'no rule' : `unknown rule ${showValue(ruleName)}`;
    throw new RewardValidationError(`${at}.rule`, `${got}, expected one of ${SUPPORTED_RULES.join(', ')}`);
  }
  const rule = ruleName as RuleName;
  const paramsField = `${at}.params`;
  const params = objectWithKeys(e.params, paramsField, PARAM_KEYS[rule], `an object with ${rule} parameters (${PARAM_KEYS[rule].join(', ')})`);
  const name = e.name === undefined ? rule : e.name;
  const weight = e.weight === undefined ? 1 : e.weight;
  if (typeof weight !== 'number') throw new RewardValidationError(`${at}.weight`, `got ${showValue(weight)}, expected a finite number`);
  if (typeof name !== 'string') throw new RewardValidationError(`${at}.name`, `got ${showValue(name)}, expected a string`);
  const component: RewardComponent = { name, weight, rule: ruleOf(rule, params, paramsField) };
  if (component.rule?.$case !== RULE_CASES[rule]) throw new Error(`internal: rule ${rule} built as ${component.rule?.$case}`);
  return component;
}

/**
 * Parses reward components from a plain JSON/YAML value (a list of
 * {@link RewardSpecEntry}) into wire `RewardComponent`s, validated exactly as
 * the reward service validates them. Errors are RewardValidationErrors on the
 * spec's own paths, e.g. `rewards[0].params.abs_tolerance: got -1, expected a
 * finite number >= 0` or `rewards[1].rule: unknown rule string "regexp",
 * expected one of reward_model, exact_match, ...`; unknown keys are refused
 * with the list of valid ones.
 */
export function parseRewardSpec(spec: unknown, fieldPrefix = 'rewards'): RewardComponent[] {
  if (!Array.isArray(spec)) {
    throw new RewardValidationError(fieldPrefix, `got ${showValue(spec)}, expected a list of reward components`);
  }
  const components = spec.map((entry: unknown, i) => entryToComponent(entry, `${fieldPrefix}[${i}]`));
  const compiled = components.map((c, i) => compileComponentAt(c, { component: `${fieldPrefix}[${i}]`, params: () => `${fieldPrefix}[${i}].params` }));
  checkComponentList(compiled, fieldPrefix);
  return components;
}
