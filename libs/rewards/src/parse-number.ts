/**
 * Numbers as models write them. A decimal is an optional sign, digits (plain,
 * or grouped in threes by commas: `1,234,567`), an optional fraction
 * (`3.25`, `5.`, `.5`) and an optional exponent (`1e-3`, `2.5E+4`). A
 * fraction is `a/b` of two decimals (`3/4`, `-1.5/2`, spaces allowed around
 * the slash) or LaTeX `\frac{a}{b}` (also `\dfrac`, `\tfrac`). Anything else,
 * including `Infinity`, `NaN`, hex, a zero denominator or a result that
 * overflows to infinity, is not a number.
 */

const DECIMAL_SOURCE = String.raw`[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?`;
const DECIMAL = new RegExp(`^${DECIMAL_SOURCE}$`);
const SLASH_FRACTION = new RegExp(`^(${DECIMAL_SOURCE})\\s*/\\s*(${DECIMAL_SOURCE})$`);
const LATEX_FRACTION = /^([+-]?)\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}$/;

function parseDecimal(text: string): number | null {
  const t = text.trim();
  if (!DECIMAL.test(t)) return null;
  const value = Number(t.replace(/,/g, ''));
  return Number.isFinite(value) ? value : null;
}

function divide(numerator: number | null, denominator: number | null, negate: boolean): number | null {
  if (numerator === null || denominator === null || denominator === 0) return null;
  const value = (negate ? -numerator : numerator) / denominator;
  return Number.isFinite(value) ? value : null;
}

/** Parses a decimal, `a/b` or `\frac{a}{b}` (see the file comment); null when `text` is not a number. */
export function parseNumber(text: string): number | null {
  const t = text.trim();
  const decimal = parseDecimal(t);
  if (decimal !== null) return decimal;
  const slash = SLASH_FRACTION.exec(t);
  if (slash) return divide(parseDecimal(slash[1]), parseDecimal(slash[2]), false);
  const latex = LATEX_FRACTION.exec(t);
  if (latex) return divide(parseDecimal(latex[2]), parseDecimal(latex[3]), latex[1] === '-');
  return null;
}

const PLAIN_DECIMAL = /^([+-]?)((?:\d{1,3}(?:,\d{3})+|\d+)?)(?:\.(\d*))?$/;

/**
 * The canonical spelling of a plain decimal (no exponent), for exact-match
 * comparison: thousands commas, a leading `+`, leading zeros and trailing
 * fractional zeros (`.0`, `2.50`) dropped, and `-0` written `0`. Digits are
 * kept as text, so long integers do not lose precision. Null when `text` is
 * not a plain decimal.
 *
 * `"+1,000.50"` -> `"1000.5"`, `"007"` -> `"7"`, `"-0.0"` -> `"0"`, `".5"` -> `"0.5"`.
 */
export function canonicalDecimal(text: string): string | null {
  const m = PLAIN_DECIMAL.exec(text.trim());
  if (!m) return null;
  const [, sign, intDigits, fracDigits = ''] = m;
  if (intDigits === '' && fracDigits === '') return null;
  const int = intDigits.replace(/,/g, '').replace(/^0+/, '') || '0';
  const frac = fracDigits.replace(/0+$/, '');
  const body = frac === '' ? int : `${int}.${frac}`;
  return sign === '-' && body !== '0' ? `-${body}` : body;
}
