import type { Normalization } from '@posttrain/proto';
import { canonicalDecimal } from './parse-number';

/**
 * Normalises an answer (the extracted one and the ground truth alike) before
 * exact comparison, in this order:
 * 1. every character of `stripChars` is removed (by code point);
 * 2. `caseInsensitive`: lower-cased (locale-independent);
 * 3. `collapseWhitespace`: ends trimmed, runs of whitespace become one space;
 * 4. always: if what is left is a plain decimal it is written canonically
 *    (`1,000` -> `1000`, `+5` -> `5`, `5.0` -> `5`; see {@link canonicalDecimal}),
 *    so that "1,000" and "1000.0" are the same answer, as GSM8K-style graders expect.
 */
export function normalizeAnswer(text: string, normalization?: Normalization): string {
  let out = text;
  if (normalization?.stripChars) {
    const strip = new Set(Array.from(normalization.stripChars));
    out = Array.from(out)
      .filter((ch) => !strip.has(ch))
      .join('');
  }
  if (normalization?.caseInsensitive) out = out.toLowerCase();
  if (normalization?.collapseWhitespace) out = out.trim().replace(/\s+/g, ' ');
  return canonicalDecimal(out) ?? out;
}
