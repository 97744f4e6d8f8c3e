import type { ScoreItem } from '@posttrain/proto';
import type { RuleContext } from './rule-scorer';

/** A ScoreItem with every field at its proto default except the ones given (tests only). */
export function item(completion: string, extra: Partial<ScoreItem> = {}): ScoreItem {
  return { id: 'it', prompt: '', promptMessages: [], completion, completionTokenIds: [], ...extra };
}

/** The context a rule gets as component 0 of a request (tests only). */
export function ctxFor(ruleName: string, name = 'c'): RuleContext {
  return { paramsPath: `components[0].${ruleName}`, describe: `components[0] (${JSON.stringify(name)}, ${ruleName})` };
}
