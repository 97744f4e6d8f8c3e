/**
 * Just enough of the Dockerfile and .dockerignore grammars to check the
 * images structurally where no Docker engine runs (CI, laptops without one).
 *
 * @example
 * const df = parseDockerfile(readFileSync('deploy/docker/reward/Dockerfile', 'utf8'));
 * const final = df.stages.at(-1); // FROM ... with its COPY, ENV, USER, EXPOSE, ENTRYPOINT
 */

export interface Instruction {
  /** Upper-cased keyword: FROM, COPY, RUN, ... */
  keyword: string;
  /** The arguments, continuation lines joined with a space. */
  args: string;
  /** 1-based line of the keyword in the file. */
  line: number;
}

export interface CopyInstruction {
  /** `--from=` stage or image, if any. */
  from?: string;
  sources: string[];
  destination: string;
  line: number;
}

export interface Stage {
  /** The image after ARG substitution, e.g. `node:20-bookworm-slim`. */
  image: string;
  /** `AS name`, if given. */
  name?: string;
  line: number;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Map<string, string>;
  stages: Stage[];
}

/** Splits a Dockerfile into instructions: comments dropped, `\` continuations joined. */
export function parseInstructions(text: string): Instruction[] {
  const lines = text.split('\n');
  const out: Instruction[] = [];
  let pending: { parts: string[]; line: number } | undefined;
  lines.forEach((raw, i) => {
    const trimmed = raw.trim();
    // Comment lines (and parser directives, which look like comments) are
    // ignored, also in the middle of a continued instruction.
    // Blank lines too (Docker skips them inside a continuation as well).
    if (trimmed.startsWith('#') || trimmed === '') return;
    const continued = trimmed.endsWith('\\');
    const body = continued ? trimmed.slice(0, -1).trim() : trimmed;
    if (!pending) pending = { parts: [], line: i + 1 };
    if (body) pending.parts.push(body);
    if (!continued) {
      const joined = pending.parts.join(' ');
      const m = /^([A-Za-z]+)\s*(.*)$/.exec(joined);
      if (!m) throw new Error(`line ${pending.line}: cannot read an instruction in "${joined.slice(0, 80)}"`);
      out.push({ keyword: m[1].toUpperCase(), args: m[2], line: pending.line });
      pending = undefined;
    }
  });
  if (pending) throw new Error(`line ${pending.line}: the file ends inside a continued instruction`);
  return out;
}

/** `${NAME}` and `$NAME` replaced from `vars`; an unknown name is an error. */
export function substitute(text: string, vars: Map<string, string>, line: number): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b) as string;
    const v = vars.get(name);
    if (v === undefined) throw new Error(`line ${line}: \${${name}} is not a declared ARG with a default`);
    return v;
  });
}

/** Parses instructions into global ARGs and build stages. */
export function parseDockerfile(text: string): Dockerfile {
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of parseInstructions(text)) {
    if (ins.keyword === 'ARG' && stages.length === 0) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(ins.args.trim());
      if (!m) throw new Error(`line ${ins.line}: cannot read ARG "${ins.args}"`);
      globalArgs.set(m[1], m[2] ?? '');
      continue;
    }
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--platform='));
      if (words.length !== 1 && !(words.length === 3 && words[1].toUpperCase() === 'AS')) throw new Error(`line ${ins.line}: expected "FROM image [AS name]", got "FROM ${ins.args}"`);
      stages.push({ image: substitute(words[0], globalArgs, ins.line), name: words[2], line: ins.line, instructions: [] });
      continue;
    }
    if (stages.length === 0) throw new Error(`line ${ins.line}: ${ins.keyword} before the first FROM`);
    stages[stages.length - 1].instructions.push(ins);
  }
  return { globalArgs, stages };
}

/** Parses an exec-form (JSON array) argument list, as ENTRYPOINT and CMD should use. */
export function execForm(ins: Instruction): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(ins.args);
  } catch {
    throw new Error(`line ${ins.line}: ${ins.keyword} is not in exec form (a JSON array of strings): ${ins.args}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) throw new Error(`line ${ins.line}: ${ins.keyword} is not a JSON array of strings: ${ins.args}`);
  return parsed as string[];
}

/** COPY/ADD arguments: flags, sources, destination (shell form only). */
export function copyArgs(ins: Instruction): CopyInstruction {
  const words = ins.args.split(/\s+/).filter(Boolean);
  let from: string | undefined;
  const rest: string[] = [];
  for (const w of words) {
    if (w.startsWith('--from=')) from = w.slice('--from='.length);
    else if (w.startsWith('--')) continue; // --chown, --chmod, --link
    else rest.push(w);
  }
  if (rest.length < 2) throw new Error(`line ${ins.line}: ${ins.keyword} needs a source and a destination, got "${ins.args}"`);
  return { from, sources: rest.slice(0, -1), destination: rest[rest.length - 1], line: ins.line };
}

/** ENV instructions of a stage, in order (`ENV A=1 B=2` form). */
export function stageEnv(stage: Stage): Map<string, string> {
  const env = new Map<string, string>();
  for (const ins of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    const pairs = ins.args.match(/[A-Za-z_][A-Za-z0-9_]*=("[^"]*"|\S*)/g) ?? [];
    if (pairs.length === 0) throw new Error(`line ${ins.line}: expected ENV NAME=value ..., got "${ins.args}"`);
    for (const p of pairs) {
      const eq = p.indexOf('=');
      env.set(p.slice(0, eq), p.slice(eq + 1).replace(/^"(.*)"$/, '$1'));
    }
  }
  return env;
}

/**
 * A .dockerignore as a predicate on context-relative paths (`libs/x/y.ts`).
 * Supports what Docker's matcher does for the patterns one writes in
 * practice: `*`, `?`, `**`, a leading `!` to re-include, and a directory
 * pattern excluding everything below it.
 */
export function dockerignoreMatcher(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      let re = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i];
        if (c === '*' && pattern[i + 1] === '*') {
          // `**/` matches zero or more directories; `**` at the end anything.
          if (pattern[i + 2] === '/') {
            re += '(?:.*/)?';
            i += 2;
          } else {
            re += '.*';
            i += 1;
          }
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}(?:/.*)?$`) };
    });
  return (path: string) => {
    const p = path.replace(/^\.\//, '').replace(/\/+$/, '');
    let excluded = false;
    for (const r of rules) if (r.re.test(p)) excluded = !r.negate;
    return excluded;
  };
}
