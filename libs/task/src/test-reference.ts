/**
 * Independent references for the specs (tests only): a reader of worked
 * replies that re-does the arithmetic from the text alone, and a parser of
 * expressions out of prompts and corpus sentences. Written without using the
 * generator's solver, so a bug there cannot hide in both.
 */

export interface ParsedStep {
  /** The numbers on the left of "=", in order, and the operators between them. */
  readonly terms: readonly number[];
  readonly ops: readonly string[];
  readonly result: number;
}

/** Parses `13-8-1=4` into terms [13, 8, 1], ops ['-', '-'], result 4; null if malformed. */
export function parseStep(text: string): ParsedStep | null {
  const m = /^(\d+)([+*-])(\d+)(?:([+-])(\d+))?=(\d+)$/.exec(text);
  if (!m) return null;
  const terms = [Number(m[1]), Number(m[3])];
  const ops = [m[2]];
  if (m[4] !== undefined) {
    ops.push(m[4]);
    terms.push(Number(m[5]));
  }
  return { terms, ops, result: Number(m[6]) };
}

/** What the left side of a step really evaluates to (operators applied left to right; * binds first only in `x*y+c`, which is how steps are written). */
export function evaluateStep(step: ParsedStep): number {
  let value = step.terms[0];
  step.ops.forEach((op, i) => {
    const t = step.terms[i + 1];
    value = op === '+' ? value + t : op === '-' ? value - t : value * t;
  });
  return value;
}

/**
 * Splits a reply ("[Sure! ]To add 45 and 13: 5+3=8, 4+1=5, so the sum is 58.\nAnswer: 58")
 * into its step texts, the result its sentence states, the number on its
 * "Answer:" line and whether it has the friendly lead-in; null if not in the
 * reply format.
 */
export function splitReply(reply: string): { steps: string[]; result: number; answer: number; friendly: boolean } | null {
  const m = /^(Sure! )?To (?:add \d+ and \d+|take \d+ from \d+|multiply \d+ by \d+): (.*), so the (?:sum|difference|product) is (\d+)\.\nAnswer: (\d+)$/.exec(reply);
  if (!m) return null;
  return { steps: m[2].split(', '), result: Number(m[3]), answer: Number(m[4]), friendly: m[1] !== undefined };
}

/** a op b out of any text that contains `a+b`, `a-b` or `a*b` as the first multi-digit expression, or the prose forms of the corpus. */
export function expressionIn(text: string): { op: '+' | '-' | '*'; a: number; b: number } | null {
  const prose: [RegExp, '+' | '-' | '*', boolean][] = [
    [/^(\d+) plus (\d+) equals/, '+', false],
    [/^The sum of (\d+) and (\d+) is/, '+', false],
    [/^To add (\d+) and (\d+):/, '+', false],
    [/^(\d+) minus (\d+) equals/, '-', false],
    [/^Taking (\d+) from (\d+) leaves/, '-', true],
    [/^To take (\d+) from (\d+):/, '-', true],
    [/^(\d+) times (\d+) equals/, '*', false],
    [/^The product of (\d+) and (\d+) is/, '*', false],
    [/^To multiply (\d+) by (\d+):/, '*', false],
  ];
  for (const [re, op, swapped] of prose) {
    const m = re.exec(text);
    if (m) return swapped ? { op, a: Number(m[2]), b: Number(m[1]) } : { op, a: Number(m[1]), b: Number(m[2]) };
  }
  const m = /(\d+)([+*-])(\d+)/.exec(text);
  return m ? { op: m[2] as '+' | '-' | '*', a: Number(m[1]), b: Number(m[3]) } : null;
}

/**
 * The sentences of a corpus document (one or two, each ending in a full
 * stop), a question kept with the worked sentence it asks for ("Compute
 * 45+13. To add 45 and 13: ...").
 */
export function sentencesOf(text: string): string[] {
  const parts = text.split(/(?<=\.) (?=[A-Z0-9])/);
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (/^Compute \d+[+*-]\d+\.$/.test(parts[i]) && i + 1 < parts.length) out.push(`${parts[i]} ${parts[++i]}`);
    else out.push(parts[i]);
  }
  return out;
}

/** Key that treats a+b and b+a as one problem (the same rule as the generator's, restated). */
export function keyOf(e: { op: string; a: number; b: number }): string {
  return e.op === '+' ? `${Math.min(e.a, e.b)}+${Math.max(e.a, e.b)}` : `${e.a}${e.op}${e.b}`;
}

/** The true value of a op b. */
export function valueOf(e: { op: string; a: number; b: number }): number {
  return e.op === '+' ? e.a + e.b : e.op === '-' ? e.a - e.b : e.a * e.b;
}
