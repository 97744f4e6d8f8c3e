import type { FormatRule } from '@posttrain/proto';
import { RewardValidationError, showValue } from './reward-errors';
import { requireBoolean, requireString, type RuleContext, type RuleScorer } from './rule-scorer';

const TAG_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;

function countOf(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

/**
 * format: 1 if the completion has the required structure, else 0.
 * - `required_tags`: each tag appears exactly once as `<tag>` and once as
 *   `</tag>`, opened before it is closed, and the blocks follow one another in
 *   the listed order without nesting (`<think>..</think><answer>..</answer>`,
 *   the DeepSeek-R1 / TRL format reward). Content may be empty; tags are case-sensitive.
 * - `answer_marker`: the last non-empty line, with its ends trimmed, starts
 *   with the marker and has a non-blank answer after it ("Answer: 42").
 * - `nothing_outside_tags`: only whitespace lies outside the required blocks.
 * A rule that checks nothing (no tags, no marker) is refused, as is
 * `nothing_outside_tags` without tags.
 */
export function compileFormatRule(rule: FormatRule, ctx: RuleContext): RuleScorer {
  const tagsField = `${ctx.paramsPath}.required_tags`;
  const tags = rule.requiredTags ?? [];
  if (!Array.isArray(tags)) throw new RewardValidationError(tagsField, `got ${showValue(tags)}, expected a list of tag names`);
  tags.forEach((tag: unknown, i) => {
    if (typeof tag !== 'string' || !TAG_NAME.test(tag)) {
      throw new RewardValidationError(`${tagsField}[${i}]`, `got ${showValue(tag)}, expected a tag name such as "think" (a letter or _, then letters, digits, _ . : -), without angle brackets`);
    }
    if (tags.indexOf(tag) !== i) {
      throw new RewardValidationError(`${tagsField}[${i}]`, `got "${tag}" again (also at [${tags.indexOf(tag)}]), expected each tag once`);
    }
  });
  const marker = requireString(rule.answerMarker, `${ctx.paramsPath}.answer_marker`);
  const nothingOutside = requireBoolean(rule.nothingOutsideTags, `${ctx.paramsPath}.nothing_outside_tags`);
  if (nothingOutside && tags.length === 0) {
    throw new RewardValidationError(`${ctx.paramsPath}.nothing_outside_tags`, 'true, but required_tags is empty; list the tags the completion must consist of');
  }
  if (tags.length === 0 && marker === '') {
    throw new RewardValidationError(ctx.paramsPath, 'checks nothing: set required_tags and/or answer_marker');
  }
  if (marker !== '' && marker.trim() !== marker) {
    throw new RewardValidationError(`${ctx.paramsPath}.answer_marker`, `got ${showValue(marker)}, expected no leading or trailing whitespace (lines are trimmed before the marker is looked for)`);
  }

  const tagsWellFormed = (text: string): boolean => {
    let cursor = 0;
    const outside: string[] = [];
    for (const tag of tags) {
      const open = `<${tag}>`;
      const close = `</${tag}>`;
      if (countOf(text, open) !== 1 || countOf(text, close) !== 1) return false;
      const o = text.indexOf(open);
      const c = text.indexOf(close);
      if (o < cursor || c < o + open.length) return false;
      outside.push(text.slice(cursor, o));
      cursor = c + close.length;
    }
    outside.push(text.slice(cursor));
    return !nothingOutside || outside.every((s) => s.trim() === '');
  };
  const endsWithAnswer = (text: string): boolean => {
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
    const last = lines.at(-1);
    return last !== undefined && last.startsWith(marker) && last.slice(marker.length).trim() !== '';
  };
  return (item) => {
    const text = item.completion;
    if (tags.length > 0 && !tagsWellFormed(text)) return 0;
    if (marker !== '' && !endsWithAnswer(text)) return 0;
    return 1;
  };
}
