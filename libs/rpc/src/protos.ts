import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Where the .proto files are at run time: `POSTTRAIN_PROTOS_DIR`, else the
 * repository's `protos/` (the Docker images keep the same layout). Reflection
 * serves descriptors built from these files.
 */
export function protosDir(): string {
  const fromEnv = process.env.POSTTRAIN_PROTOS_DIR;
  const dir = fromEnv ? resolve(fromEnv) : resolve(__dirname, '../../../protos');
  if (!existsSync(dir)) throw new Error(`protos directory not found at ${dir}${fromEnv ? ' (from POSTTRAIN_PROTOS_DIR)' : '; set POSTTRAIN_PROTOS_DIR'}`);
  return dir;
}

/** Every .proto under protosDir(), relative to it (as proto imports name them). */
export function protoFiles(): string[] {
  const root = protosDir();
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(join(root, r)).isDirectory()) walk(r);
      else if (name.endsWith('.proto')) out.push(r);
    }
  };
  walk('');
  return out.sort();
}
