/**
 * Checks on the rendered manifests' policies: disruption budgets, network
 * policies (evaluated for concrete callers), security contexts and the TLS
 * wiring. Like manifest-checks.ts, each returns its problems
 * ("Kind/name: what is wrong"); an empty list means the design holds.
 *
 * @example
 * const problems = checkNetworkPolicies(renderKustomize('deploy/k8s/overlays/cpu'));
 */
import type { K8sObject } from './kustomize';
import { effectiveEnv, find, podTemplate, volumeOf, type Container, type PodTemplate } from './manifest-checks';

const id = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;

/** The serving tiers: each must keep pods through voluntary disruptions. */
export const SERVING_TIERS = ['policy-sampler', 'reference', 'reward'] as const;

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

/** Whether a label selector selects these labels (an empty selector selects everything). */
export function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]);
    const ok = e.operator === 'In' ? inValues : e.operator === 'NotIn' ? !inValues : e.operator === 'Exists' ? has : !has;
    if (!ok) return false;
  }
  return true;
}

const podLabels = (o: K8sObject) => podTemplate(o)?.metadata?.labels ?? {};

/** Every serving tier has a PodDisruptionBudget selecting its pods that still lets a node drain. */
export function checkDisruptionBudgets(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
  for (const name of SERVING_TIERS) {
    const dep = find(objects, 'Deployment', name);
    if (!dep) continue;
    const covering = pdbs.filter((p) => selects((p.spec as { selector?: LabelSelector }).selector, podLabels(dep)));
    if (covering.length === 0) {
      problems.push(`Deployment/${name}: no PodDisruptionBudget selects its pods`);
      continue;
    }
    for (const p of covering) {
      const spec = p.spec as { maxUnavailable?: number | string; minAvailable?: number | string };
      if (spec.maxUnavailable === undefined) problems.push(`${id(p)}: minAvailable ${spec.minAvailable}, expected maxUnavailable (a tier of one pod could never be drained)`);
      else if (!(typeof spec.maxUnavailable === 'number' ? spec.maxUnavailable >= 1 : /^[1-9]\d*%$/.test(spec.maxUnavailable))) problems.push(`${id(p)}: maxUnavailable ${spec.maxUnavailable}, expected at least 1 (0 blocks every drain)`);
    }
  }
  return problems;
}

/** A caller: a pod's labels, and its namespace's labels (undefined: the workloads' own namespace). */
export interface Peer {
  name: string;
  pod: Record<string, string>;
  namespace?: Record<string, string>;
}

interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: unknown;
}
interface NetworkPolicySpec {
  podSelector: LabelSelector;
  policyTypes?: string[];
  ingress?: { from?: PolicyPeer[]; ports?: { port?: number | string; protocol?: string }[] }[];
}

function peerMatches(p: PolicyPeer, peer: Peer): boolean {
  if (p.ipBlock) return true; // an address range may include any pod
  // The workloads' own namespace is taken as unlabelled.
  if (p.namespaceSelector) return selects(p.namespaceSelector, peer.namespace ?? {}) && (!p.podSelector || selects(p.podSelector, peer.pod));
  return peer.namespace === undefined && selects(p.podSelector ?? {}, peer.pod);
}

/**
 * Whether `peer` may open a connection to the container port named `portName`
 * of `target`'s pods, under the rendered NetworkPolicies: allowed when no
 * policy isolates the pods for ingress, or some rule of a policy selecting
 * them admits the peer on that port.
 */
export function ingressAllowed(objects: K8sObject[], target: K8sObject, peer: Peer, portName: string): boolean {
  const labels = podLabels(target);
  const c = podTemplate(target)?.spec.containers[0];
  const portNumber = c?.ports?.find((p) => p.name === portName)?.containerPort;
  const policies = objects
    .filter((o) => o.kind === 'NetworkPolicy')
    .map((o) => o.spec as NetworkPolicySpec)
    .filter((s) => selects(s.podSelector, labels) && (s.policyTypes ?? ['Ingress']).includes('Ingress'));
  if (policies.length === 0) return true;
  return policies.some((s) =>
    (s.ingress ?? []).some((rule) => {
      const fromOk = !rule.from || rule.from.length === 0 || rule.from.some((p) => peerMatches(p, peer));
      const portOk = !rule.ports || rule.ports.length === 0 || rule.ports.some((p) => p.port === undefined || p.port === portName || p.port === portNumber);
      return fromOk && portOk;
    }),
  );
}

/** Callers the policy must tell apart. */
export const PEERS = {
  trainerApi: { name: 'the trainer', pod: { 'app.kubernetes.io/name': 'trainer', 'app.kubernetes.io/component': 'trainer' } },
  trainerJob: { name: 'a trainer-run Job', pod: { 'app.kubernetes.io/name': 'trainer-run', 'app.kubernetes.io/component': 'trainer' } },
  client: { name: 'a labelled client', pod: { 'posttrain.dev/client': 'true', app: 'notebook' } },
  stranger: { name: 'an unlabelled pod', pod: { app: 'notebook' } },
  prometheus: { name: 'Prometheus', pod: { 'app.kubernetes.io/name': 'prometheus' }, namespace: { 'posttrain.dev/metrics': 'true' } },
  otherNamespace: { name: 'a pod of another namespace', pod: { 'posttrain.dev/client': 'true', 'app.kubernetes.io/name': 'prometheus' }, namespace: { team: 'x' } },
} satisfies Record<string, Peer>;

/**
 * The serving tiers' gRPC: the trainer's pods and labelled clients only. The
 * Trainer API's gRPC: labelled clients only. Every metrics port: Prometheus
 * only. Nobody else, and Prometheus reaches no gRPC port.
 */
export function checkNetworkPolicies(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const expect = (target: K8sObject, peer: Peer, port: string, allowed: boolean) => {
    if (ingressAllowed(objects, target, peer, port) !== allowed) problems.push(`${id(target)}: ${peer.name} ${allowed ? 'cannot reach' : 'reaches'} its ${port} port`);
  };
  for (const name of [...SERVING_TIERS, 'trainer']) {
    const dep = find(objects, 'Deployment', name);
    if (!dep) continue;
    const serving = name !== 'trainer';
    expect(dep, PEERS.trainerApi, 'grpc', serving);
    expect(dep, PEERS.trainerJob, 'grpc', serving);
    expect(dep, PEERS.client, 'grpc', true);
    expect(dep, PEERS.stranger, 'grpc', false);
    expect(dep, PEERS.prometheus, 'grpc', false);
    expect(dep, PEERS.otherNamespace, 'grpc', false);
    expect(dep, PEERS.prometheus, 'metrics', true);
    expect(dep, PEERS.stranger, 'metrics', false);
    expect(dep, PEERS.client, 'metrics', false);
  }
  return problems;
}

/** Every pod template (Deployments and Jobs): non-root with the runtime's seccomp profile; every container without privilege escalation, capabilities or a writable root. */
export function checkSecurityContexts(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const pod: PodTemplate | undefined = podTemplate(o);
    if (!pod) continue;
    const sc = pod.spec.securityContext;
    if (sc?.runAsNonRoot !== true) problems.push(`${id(o)}: pod securityContext.runAsNonRoot is ${sc?.runAsNonRoot}, expected true`);
    if (sc?.runAsUser === 0) problems.push(`${id(o)}: pod securityContext.runAsUser is 0 (root)`);
    if (sc?.seccompProfile?.type !== 'RuntimeDefault') problems.push(`${id(o)}: pod securityContext.seccompProfile.type is ${sc?.seccompProfile?.type}, expected RuntimeDefault`);
    for (const c of pod.spec.containers) {
      const csc = c.securityContext;
      if (csc?.allowPrivilegeEscalation !== false) problems.push(`${id(o)}: container ${c.name} allowPrivilegeEscalation is ${csc?.allowPrivilegeEscalation}, expected false`);
      if (csc?.readOnlyRootFilesystem !== true) problems.push(`${id(o)}: container ${c.name} readOnlyRootFilesystem is ${csc?.readOnlyRootFilesystem}, expected true`);
      if (!csc?.capabilities?.drop?.includes('ALL')) problems.push(`${id(o)}: container ${c.name} does not drop ALL capabilities`);
    }
  }
  return problems;
}

const SERVER_TLS = ['POSTTRAIN_TLS_CERT', 'POSTTRAIN_TLS_KEY', 'POSTTRAIN_TLS_CLIENT_CA'] as const;
const CLIENT_TLS = ['POSTTRAIN_TLS_CA', 'POSTTRAIN_TLS_CLIENT_CERT', 'POSTTRAIN_TLS_CLIENT_KEY'] as const;

/**
 * TLS on (the tls component): every Deployment serves mutual TLS and every
 * pod calls over TLS, each variable naming a file of a mounted Secret volume
 * that holds that key. TLS off: no TLS variable anywhere.
 */
export function checkTls(objects: K8sObject[], opts: { tls: boolean }): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const pod = podTemplate(o);
    const c: Container | undefined = pod?.spec.containers[0];
    if (!pod || !c) continue;
    const { env } = effectiveEnv(c, objects);
    const wanted = opts.tls ? [...(o.kind === 'Deployment' ? SERVER_TLS : []), ...CLIENT_TLS] : [];
    for (const key of [...SERVER_TLS, ...CLIENT_TLS]) {
      const path = env.get(key);
      if (!wanted.includes(key)) {
        if (path !== undefined) problems.push(`${id(o)}: ${key}=${path} is set, expected TLS ${opts.tls ? 'client variables only (a Job serves nothing)' : 'off without the tls component'}`);
        continue;
      }
      if (!path) {
        problems.push(`${id(o)}: ${key} not set`);
        continue;
      }
      const { mount, volume } = volumeOf(pod, c, path);
      if (!mount || !volume?.secret) problems.push(`${id(o)}: ${key}=${path} is on no mounted Secret volume`);
      else if (!mount.readOnly) problems.push(`${id(o)}: the TLS volume at ${mount.mountPath} is mounted writable`);
    }
  }
  return problems;
}
