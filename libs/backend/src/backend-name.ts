/**
 * The backends posttrain can run on, in automatic-selection order (first that
 * loads wins): native TensorFlow with CUDA, native TensorFlow on CPU, the
 * WebAssembly backend (XNNPACK, always installed), plain JavaScript.
 */
export const BACKEND_NAMES = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** A requested backend: one of BACKEND_NAMES, or 'auto' for the first that loads. */
export type BackendRequest = BackendName | 'auto';

const ALIASES = new Map<string, BackendRequest>(Object.entries({
  'tensorflow-gpu': 'tensorflow-gpu',
  gpu: 'tensorflow-gpu',
  'tfjs-node-gpu': 'tensorflow-gpu',
  tensorflow: 'tensorflow',
  node: 'tensorflow',
  'tfjs-node': 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
  auto: 'auto',
} satisfies Record<string, BackendRequest>));

/** The accepted spellings, for error messages and help text. */
export const BACKEND_CHOICES =
  'auto, tensorflow-gpu (aliases gpu, tfjs-node-gpu), tensorflow (aliases node, tfjs-node), wasm, cpu';

/**
 * Parses a backend name (case-insensitive, surrounding spaces ignored; the
 * empty string means 'auto'). `source` names where the value came from, e.g.
 * 'POSTTRAIN_BACKEND', and is the first word of the error.
 */
export function parseBackendName(value: string, source = 'backend'): BackendRequest {
  const v = value.trim().toLowerCase();
  if (v === '') return 'auto';
  const name = ALIASES.get(v);
  if (name === undefined) throw new Error(`${source}: got "${value}", expected one of ${BACKEND_CHOICES}`);
  return name;
}
