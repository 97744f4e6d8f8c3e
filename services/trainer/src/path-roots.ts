import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { invalidArgument } from '@posttrain/rpc';

/**
 * The directories a RunSpec may name: models (base and value models), data
 * (JSONL files) and runs (outputs, and models that earlier runs produced).
 * A gRPC caller is not the trainer's user: without these bounds StartRun
 * would read, and output_dir write, any file the trainer can.
 */
export interface PathRoots {
  models: string;
  data: string;
  runs: string;
}

export type RootName = keyof PathRoots;

const FLAG_OF: Record<RootName, string> = { models: '--models-root (POSTTRAIN_MODELS_ROOT)', data: '--data-root (POSTTRAIN_DATA_ROOT)', runs: '--runs-dir (POSTTRAIN_RUNS_DIR)' };
const MAX_PATH_CHARS = 4096;

/** The real path of `p`, following every link; for a path that does not exist yet, its deepest existing ancestor's real path plus the rest. */
function realPathOf(p: string): string {
  const missing: string[] = [];
  let cur = resolve(p);
  while (!existsSync(cur)) {
    const parent = dirname(cur);
    if (parent === cur) break;
    missing.unshift(basename(cur));
    cur = parent;
  }
  return join(realpathSync(cur), ...missing);
}

const inside = (root: string, p: string): boolean => {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/** The roots as real absolute paths, so links in the roots themselves are allowed. */
export function resolvePathRoots(roots: PathRoots): PathRoots {
  return { models: realPathOf(roots.models), data: realPathOf(roots.data), runs: realPathOf(roots.runs) };
}

const shown = (v: string) => JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}...` : v);

/**
 * `value` (relative to the working directory) as the real path the run will
 * use, after following links, when it lies inside one of the `allowed`
 * roots; INVALID_ARGUMENT naming `field` otherwise. Callers use the returned
 * path, so what was checked is what is opened.
 */
export function confinePath(field: string, value: string, allowed: readonly RootName[], roots: PathRoots): string {
  if (value.length > MAX_PATH_CHARS) throw invalidArgument(field, `a path of ${value.length} characters, expected at most ${MAX_PATH_CHARS}`);
  if (value.includes('\0')) throw invalidArgument(field, `${shown(value)} contains a NUL character`);
  let real: string;
  try {
    real = realPathOf(value);
  } catch (err) {
    throw invalidArgument(field, `${shown(value)} cannot be resolved (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (allowed.some((r) => inside(roots[r], real))) return real;
  const where = allowed.map((r) => `the ${r} root ${roots[r]} (${FLAG_OF[r]})`).join(' or ');
  throw invalidArgument(field, `${shown(value)} resolves to ${shown(real)}, outside ${where}; expected a path inside ${allowed.length > 1 ? 'one of them' : 'it'}`);
}
