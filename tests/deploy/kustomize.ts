/**
 * Renders kustomize directories with `kubectl kustomize` and validates every
 * object against the Kubernetes OpenAPI schema (package kubernetes-models).
 *
 * @example
 * const objects = renderKustomize('deploy/k8s/overlays/gpu');
 * for (const o of objects) await validateObject(o); // throws naming kind/name and the field
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: unknown;
  data?: Record<string, string>;
}

/** Oldest kustomize whose syntax the overlays use (`patches:` with targets, `labels:`, `replicas:`). */
const MIN_KUSTOMIZE_MAJOR = 4;

let checked: string | undefined;

/**
 * The kubectl to run, after checking that it exists and embeds a recent
 * enough kustomize. Installs nothing: a machine without it gets an error that
 * says what to install.
 */
export function kubectlWithKustomize(): string {
  if (checked) return checked;
  const r = spawnSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `kubectl is needed to render deploy/k8s (\`kubectl kustomize\`) but ${r.error ? `could not be run (${r.error.message})` : `exited ${r.status}: ${r.stderr.trim()}`}. ` +
        `Install kubectl 1.21 or newer (with kustomize v${MIN_KUSTOMIZE_MAJOR}+); Debian's kubernetes-client package (1.20) is too old.`,
    );
  }
  const info = JSON.parse(r.stdout) as { kustomizeVersion?: string; clientVersion?: { gitVersion?: string } };
  const major = Number(/^v?(\d+)/.exec(info.kustomizeVersion ?? '')?.[1] ?? NaN);
  if (!(major >= MIN_KUSTOMIZE_MAJOR)) {
    throw new Error(`kubectl ${info.clientVersion?.gitVersion ?? '?'} embeds kustomize ${info.kustomizeVersion ?? '(unknown)'}; deploy/k8s needs kustomize v${MIN_KUSTOMIZE_MAJOR} or newer (kubectl 1.21+)`);
  }
  checked = 'kubectl';
  return checked;
}

/** `kubectl kustomize dir`, parsed: one object per YAML document. */
export function renderKustomize(dir: string): K8sObject[] {
  const kubectl = kubectlWithKustomize();
  const r = spawnSync(kubectl, ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${r.error?.message ?? r.stderr.trim()}`);
  return parseManifests(r.stdout, `kubectl kustomize ${dir}`);
}

/**
 * Renders `dir` with kustomize components added, as an overlay listing them
 * under `components:` would (kustomize wants relative paths, so the
 * throwaway kustomization names them from its own directory).
 */
export function renderWithComponents(dir: string, components: string[]): K8sObject[] {
  const tmp = mkdtempSync(join(tmpdir(), 'posttrain-kustomize-'));
  try {
    const rel = (p: string) => JSON.stringify(relative(tmp, p));
    writeFileSync(join(tmp, 'kustomization.yaml'), `resources: [${rel(dir)}]\ncomponents: [${components.map(rel).join(', ')}]\n`);
    return renderKustomize(tmp);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Parses a multi-document YAML stream; every document must be a Kubernetes object. */
export function parseManifests(text: string, source: string): K8sObject[] {
  return parseAllDocuments(text).map((doc, i) => {
    if (doc.errors.length) throw new Error(`${source}: document ${i + 1}: ${doc.errors[0].message}`);
    const o = doc.toJS() as Partial<K8sObject> | null;
    if (!o || typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') {
      throw new Error(`${source}: document ${i + 1} is not a Kubernetes object (needs apiVersion, kind and metadata.name)`);
    }
    return o as K8sObject;
  });
}

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: object) => Validatable;

/**
 * kubernetes-models module path of an apiVersion/kind, e.g. apps/v1 Deployment
 * -> `kubernetes-models/apps/v1/Deployment`, v1 Service -> `kubernetes-models/v1/Service`.
 */
export function modelPath(apiVersion: string, kind: string): string {
  if (!/^([a-z0-9.-]+\/)?v\d+((alpha|beta)\d+)?$/.test(apiVersion)) throw new Error(`apiVersion "${apiVersion}" is not group/version or version`);
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) throw new Error(`kind "${kind}" is not a Kubernetes kind name`);
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/**
 * Validates one object against its OpenAPI schema; throws naming the object
 * and the failing fields. The schemas check types, enums and required fields;
 * they accept unknown fields, which the property checks guard instead.
 */
export async function validateObject(o: K8sObject): Promise<void> {
  const path = modelPath(o.apiVersion, o.kind);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(path)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${o.kind}/${o.metadata.name}: no schema for ${o.apiVersion} ${o.kind} (${(err as Error).message.split('\n')[0]})`);
  }
  const Model = mod[o.kind] as ModelClass | undefined;
  if (typeof Model !== 'function') throw new Error(`${o.kind}/${o.metadata.name}: ${path} exports no ${o.kind}`);
  const { apiVersion: _a, kind: _k, ...rest } = o;
  try {
    new Model(rest).validate();
  } catch (err) {
    throw new Error(`${o.kind}/${o.metadata.name} does not match the ${o.apiVersion} schema: ${(err as Error).message}`);
  }
}
