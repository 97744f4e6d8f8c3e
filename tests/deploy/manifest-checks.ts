/**
 * The deployment design as checks on rendered manifests. Each check returns
 * the problems it finds ("Kind/name: what is wrong"), so a spec can assert an
 * empty list for the real overlays and a non-empty one for broken copies.
 *
 * @example
 * const problems = checkWorkloads(renderKustomize('deploy/k8s/overlays/cpu'), { overlay: 'cpu' });
 */
import { parse } from 'yaml';
import type { K8sObject } from './kustomize';

export interface Port {
  name?: string;
  containerPort?: number;
  port?: number;
  targetPort?: number | string;
}
export interface Probe {
  grpc?: { port: number; service?: string };
  httpGet?: unknown;
  tcpSocket?: unknown;
  exec?: unknown;
}
export interface Container {
  name: string;
  image?: string;
  ports?: Port[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string } }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  command?: string[];
  args?: string[];
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; runAsNonRoot?: boolean; capabilities?: { drop?: string[] } };
  lifecycle?: { preStop?: { exec?: { command?: string[] }; sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
export interface PodSpec {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  restartPolicy?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  volumes?: { name: string; persistentVolumeClaim?: { claimName: string }; configMap?: { name: string }; secret?: { secretName: string } }[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
}
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

/** The service each workload runs, its gRPC port (services' defaultPort) and its model variable. */
export const WORKLOADS = {
  'policy-sampler': { kind: 'Deployment', port: 50051, modelEnv: 'POSTTRAIN_MODEL_DIR' },
  reference: { kind: 'Deployment', port: 50052, modelEnv: 'POSTTRAIN_MODEL_DIR' },
  reward: { kind: 'Deployment', port: 50053, modelEnv: 'POSTTRAIN_REWARD_MODEL_DIR' },
  trainer: { kind: 'Deployment', port: 50054, modelEnv: undefined },
} as const;
export type WorkloadName = keyof typeof WORKLOADS;

const id = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
export const find = (objects: K8sObject[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);

export function podTemplate(o: K8sObject): PodTemplate | undefined {
  return (o.spec as { template?: PodTemplate } | undefined)?.template;
}

/** A container's environment as the process sees it: envFrom ConfigMaps, then env over them. */
export function effectiveEnv(c: Container, objects: K8sObject[]): { env: Map<string, string>; problems: string[] } {
  const env = new Map<string, string>();
  const problems: string[] = [];
  for (const from of c.envFrom ?? []) {
    if (!from.configMapRef) continue;
    const cm = find(objects, 'ConfigMap', from.configMapRef.name);
    if (!cm) problems.push(`container ${c.name}: envFrom names ConfigMap ${from.configMapRef.name}, which the overlay does not create`);
    for (const [k, v] of Object.entries(cm?.data ?? {})) env.set(k, v);
  }
  for (const e of c.env ?? []) if (e.value !== undefined) env.set(e.name, e.value);
  return { env, problems };
}

function preStopSeconds(c: Container): number {
  const p = c.lifecycle?.preStop;
  if (p?.sleep) return p.sleep.seconds;
  const cmd = p?.exec?.command;
  if (cmd && cmd[0] === 'sleep' && cmd.length === 2) return Number(cmd[1]);
  return 0;
}

const quantity = (q: string | undefined): number => {
  if (q === undefined) return NaN;
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti)?$/.exec(q);
  if (!m) return NaN;
  const scale: Record<string, number> = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
  return Number(m[1]) * (m[2] ? scale[m[2]] : 1);
};
export { quantity };

/**
 * The four workloads: kinds, named ports, gRPC probes, the POSTTRAIN_*
 * environment, metrics annotations, graceful shutdown, resources, model
 * volume, and GPU settings present exactly when `gpu` is true.
 */
export function checkWorkloads(objects: K8sObject[], opts: { gpu: boolean }): string[] {
  const problems: string[] = [];
  for (const [name, want] of Object.entries(WORKLOADS)) {
    const o = find(objects, want.kind, name);
    if (!o) {
      problems.push(`${want.kind}/${name}: missing`);
      continue;
    }
    const pod = podTemplate(o);
    if (!pod) {
      problems.push(`${id(o)}: no pod template`);
      continue;
    }
    if (pod.spec.containers.length !== 1) problems.push(`${id(o)}: ${pod.spec.containers.length} containers, expected 1`);
    const c = pod.spec.containers[0];
    const grpc = c.ports?.find((p) => p.name === 'grpc');
    const metrics = c.ports?.find((p) => p.name === 'metrics');
    if (grpc?.containerPort !== want.port) problems.push(`${id(o)}: container port "grpc" is ${grpc?.containerPort}, expected ${want.port} (the service's default)`);
    if (!metrics?.containerPort) problems.push(`${id(o)}: no container port named "metrics"`);
    const { env, problems: envProblems } = effectiveEnv(c, objects);
    // The kubelet's gRPC probes speak plaintext: with TLS on they ask the plaintext health port.
    const healthPort = env.has('POSTTRAIN_HEALTH_PORT') ? Number(env.get('POSTTRAIN_HEALTH_PORT')) : undefined;
    if (env.has('POSTTRAIN_TLS_CERT') && healthPort === undefined) problems.push(`${id(o)}: POSTTRAIN_TLS_CERT is set but POSTTRAIN_HEALTH_PORT is not: the kubelet's plaintext gRPC probes would fail the TLS handshake`);
    const probePort = healthPort ?? want.port;
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
      const probe = c[kind];
      if (!probe?.grpc) problems.push(`${id(o)}: ${kind} is not a native grpc probe`);
      else if (probe.grpc.port !== probePort) problems.push(`${id(o)}: ${kind}.grpc.port ${probe.grpc.port}, expected ${probePort}${healthPort === undefined ? '' : ' (POSTTRAIN_HEALTH_PORT)'}`);
    }

    problems.push(...envProblems.map((p) => `${id(o)}: ${p}`));
    if (env.get('POSTTRAIN_HOST') !== '0.0.0.0') problems.push(`${id(o)}: POSTTRAIN_HOST=${env.get('POSTTRAIN_HOST')}, expected 0.0.0.0`);
    if (env.get('POSTTRAIN_PORT') !== String(want.port)) problems.push(`${id(o)}: POSTTRAIN_PORT=${env.get('POSTTRAIN_PORT')}, expected ${want.port}`);
    if (metrics && env.get('POSTTRAIN_METRICS_PORT') !== String(metrics.containerPort)) problems.push(`${id(o)}: POSTTRAIN_METRICS_PORT=${env.get('POSTTRAIN_METRICS_PORT')}, expected the metrics port ${metrics.containerPort}`);
    const ann = pod.metadata?.annotations ?? {};
    if (ann['prometheus.io/scrape'] !== 'true' || ann['prometheus.io/port'] !== String(metrics?.containerPort)) {
      problems.push(`${id(o)}: pod annotations prometheus.io/scrape=${ann['prometheus.io/scrape']} prometheus.io/port=${ann['prometheus.io/port']}, expected "true" and the metrics port`);
    }

    // SIGTERM arrives after preStop; the server then drains for
    // POSTTRAIN_SHUTDOWN_GRACE_MS; the kubelet kills at terminationGracePeriodSeconds.
    const graceMs = Number(env.get('POSTTRAIN_SHUTDOWN_GRACE_MS') ?? 10_000);
    const budgetMs = (pod.spec.terminationGracePeriodSeconds ?? 30) * 1000;
    const neededMs = preStopSeconds(c) * 1000 + graceMs;
    if (!(budgetMs > neededMs)) problems.push(`${id(o)}: terminationGracePeriodSeconds ${budgetMs / 1000} s does not exceed preStop ${preStopSeconds(c)} s + POSTTRAIN_SHUTDOWN_GRACE_MS ${graceMs} ms`);

    for (const r of ['cpu', 'memory']) {
      const req = quantity(c.resources?.requests?.[r]);
      const lim = quantity(c.resources?.limits?.[r]);
      if (!(req > 0)) problems.push(`${id(o)}: no ${r} request`);
      if (!(lim > 0)) problems.push(`${id(o)}: no ${r} limit`);
      if (req > lim) problems.push(`${id(o)}: ${r} request ${c.resources?.requests?.[r]} exceeds its limit ${c.resources?.limits?.[r]}`);
    }

    if (want.modelEnv) {
      const dir = env.get(want.modelEnv);
      const mount = c.volumeMounts?.find((m) => dir !== undefined && (dir === m.mountPath || dir.startsWith(`${m.mountPath}/`)));
      if (!dir) problems.push(`${id(o)}: ${want.modelEnv} not set`);
      else if (!mount) problems.push(`${id(o)}: ${want.modelEnv}=${dir} is on no mounted volume`);
      else if (!mount.readOnly) problems.push(`${id(o)}: the model volume at ${mount.mountPath} is mounted writable`);
      else {
        const vol = pod.spec.volumes?.find((v) => v.name === mount.name);
        const claim = vol?.persistentVolumeClaim?.claimName;
        if (!claim || !find(objects, 'PersistentVolumeClaim', claim)) problems.push(`${id(o)}: the model volume ${mount.name} is no PersistentVolumeClaim of the overlay`);
      }
    }

    const gpus = c.resources?.limits?.['nvidia.com/gpu'];
    const hasGpuSettings = gpus !== undefined || c.resources?.requests?.['nvidia.com/gpu'] !== undefined || pod.spec.nodeSelector !== undefined || pod.spec.tolerations !== undefined;
    if (opts.gpu) {
      if (gpus !== '1') problems.push(`${id(o)}: nvidia.com/gpu limit ${gpus}, expected "1"`);
      if (!pod.spec.nodeSelector || Object.keys(pod.spec.nodeSelector).length === 0) problems.push(`${id(o)}: no nodeSelector for GPU nodes`);
      if (!pod.spec.tolerations?.length) problems.push(`${id(o)}: no toleration for GPU node taints`);
      if (env.get('POSTTRAIN_BACKEND') !== 'tensorflow-gpu') problems.push(`${id(o)}: POSTTRAIN_BACKEND=${env.get('POSTTRAIN_BACKEND')}, expected tensorflow-gpu`);
    } else if (hasGpuSettings) {
      problems.push(`${id(o)}: GPU limits, node selectors or tolerations outside the gpu overlay`);
    }
  }
  return problems;
}

/** Every Service headless, with named grpc and metrics ports that reach the workload's named container ports. */
export function checkServices(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const [name, want] of Object.entries(WORKLOADS)) {
    const svc = find(objects, 'Service', name);
    if (!svc) {
      problems.push(`Service/${name}: missing`);
      continue;
    }
    const spec = svc.spec as { clusterIP?: string; selector?: Record<string, string>; ports?: Port[] };
    if (spec.clusterIP !== 'None') problems.push(`Service/${name}: clusterIP ${spec.clusterIP ?? '(unset)'}, expected None (headless, for client-side round-robin)`);
    const grpc = spec.ports?.find((p) => p.name === 'grpc');
    if (grpc?.port !== want.port) problems.push(`Service/${name}: port "grpc" is ${grpc?.port}, expected ${want.port}`);
    if (grpc && grpc.targetPort !== 'grpc' && grpc.targetPort !== want.port) problems.push(`Service/${name}: port "grpc" targets ${grpc.targetPort}`);
    if (!spec.ports?.some((p) => p.name === 'metrics')) problems.push(`Service/${name}: no port named "metrics"`);
    const workload = find(objects, want.kind, name);
    const labels = workload ? podTemplate(workload)?.metadata?.labels ?? {} : {};
    const selector = Object.entries(spec.selector ?? {});
    if (selector.length === 0 || !selector.every(([k, v]) => labels[k] === v)) problems.push(`Service/${name}: selector ${JSON.stringify(spec.selector)} does not select the ${want.kind}'s pods`);
  }
  return problems;
}

/** The sampler's HPA; `local` also wants one sampler at rest. */
export function checkAutoscaling(objects: K8sObject[], opts: { local: boolean }): string[] {
  const problems: string[] = [];
  const hpas = objects.filter((o) => o.kind === 'HorizontalPodAutoscaler');
  if (hpas.length !== 1) problems.push(`${hpas.length} HorizontalPodAutoscalers, expected 1 (the sampler's)`);
  const hpa = hpas[0];
  const sampler = find(objects, 'Deployment', 'policy-sampler');
  if (hpa) {
    const spec = hpa.spec as { scaleTargetRef: { apiVersion: string; kind: string; name: string }; minReplicas?: number; maxReplicas: number; metrics?: { type: string }[] };
    const t = spec.scaleTargetRef;
    if (t.apiVersion !== 'apps/v1' || t.kind !== 'Deployment' || t.name !== 'policy-sampler') problems.push(`${id(hpa)}: scales ${t.apiVersion} ${t.kind}/${t.name}, expected apps/v1 Deployment/policy-sampler`);
    if ((spec.minReplicas ?? 1) > spec.maxReplicas) problems.push(`${id(hpa)}: minReplicas ${spec.minReplicas} > maxReplicas ${spec.maxReplicas}`);
    if (!spec.metrics?.length) problems.push(`${id(hpa)}: no metrics`);
    if (opts.local && (spec.minReplicas ?? 1) !== 1) problems.push(`${id(hpa)}: minReplicas ${spec.minReplicas}, expected 1 in the local overlay`);
  }
  const replicas = (sampler?.spec as { replicas?: number } | undefined)?.replicas;
  if (sampler && replicas !== undefined) problems.push(`Deployment/policy-sampler: replicas ${replicas} is set, but the HPA owns it (every apply would reset the pool)`);
  if (opts.local) {
    for (const name of ['reference', 'reward']) {
      const r = (find(objects, 'Deployment', name)?.spec as { replicas?: number } | undefined)?.replicas ?? 1;
      if (r !== 1) problems.push(`Deployment/${name}: ${r} replicas, expected 1 in the local overlay`);
    }
  }
  return problems;
}

/** Where `path` lies: the mount holding it and the pod volume behind that mount. */
export function volumeOf(pod: PodTemplate, c: Container, path: string | undefined) {
  const mount = c.volumeMounts?.find((m) => path !== undefined && (path === m.mountPath || path.startsWith(`${m.mountPath}/`)));
  return { mount, volume: mount && pod.spec.volumes?.find((v) => v.name === mount.name) };
}

function checkRunsVolume(o: K8sObject, pod: PodTemplate, runsDir: string | undefined, objects: K8sObject[]): string[] {
  const c = pod.spec.containers[0];
  const { mount, volume } = volumeOf(pod, c, runsDir);
  if (!runsDir) return [`${id(o)}: the runs directory is not set`];
  if (!mount) return [`${id(o)}: the runs directory ${runsDir} is on no mounted volume`];
  if (mount.readOnly) return [`${id(o)}: the runs volume at ${mount.mountPath} is read-only`];
  const claim = volume?.persistentVolumeClaim?.claimName;
  if (!claim) return [`${id(o)}: the runs volume ${mount.name} is not a PersistentVolumeClaim`];
  if (!find(objects, 'PersistentVolumeClaim', claim)) return [`${id(o)}: PersistentVolumeClaim ${claim} is not in the overlay`];
  return [];
}

/**
 * The trainer's two shapes. The Trainer API: one Deployment replica (Recreate:
 * the ReadWriteOnce runs volume), runs on a PVC, the other services'
 * addresses resolvable. trainer-run: a Job running `trainer run --config` on
 * a file of a mounted ConfigMap, failing with its run (restartPolicy Never),
 * writing to the same runs claim.
 */
export function checkTrainer(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const dep = find(objects, 'Deployment', 'trainer');
  if (!dep) return ['Deployment/trainer: missing'];
  const spec = dep.spec as { replicas?: number; strategy?: { type?: string } };
  if ((spec.replicas ?? 1) !== 1) problems.push(`Deployment/trainer: ${spec.replicas} replicas, expected 1 (one process owns the runs directory)`);
  if (spec.strategy?.type !== 'Recreate') problems.push(`Deployment/trainer: strategy ${spec.strategy?.type ?? '(unset)'}, expected Recreate (the runs volume is ReadWriteOnce)`);
  const pod = podTemplate(dep);
  const c = pod?.spec.containers[0];
  if (!pod || !c) return [...problems, 'Deployment/trainer: no container'];
  const { env } = effectiveEnv(c, objects);
  problems.push(...checkRunsVolume(dep, pod, env.get('POSTTRAIN_RUNS_DIR'), objects));
  // dns:///name:port must name a Service of the overlay with that port.
  // The samplers as an elastic pool (each pod dialled, each given every weight push), not one dns:/// channel.
  if (env.has('POSTTRAIN_SAMPLER_ADDRESSES')) problems.push(`Deployment/trainer: POSTTRAIN_SAMPLER_ADDRESSES=${env.get('POSTTRAIN_SAMPLER_ADDRESSES')}, expected POSTTRAIN_SAMPLER_DNS (a dns:/// channel would round-robin weight pushes over the pods)`);
  const dnsProblem = checkServiceAddress(objects, `dns:///${env.get('POSTTRAIN_SAMPLER_DNS') ?? ''}`, 'policy-sampler');
  if (dnsProblem) problems.push(`Deployment/trainer: POSTTRAIN_SAMPLER_DNS=${env.get('POSTTRAIN_SAMPLER_DNS')}: ${dnsProblem}`);
  for (const [key, service] of [['POSTTRAIN_REFERENCE_ADDRESS', 'reference'], ['POSTTRAIN_REWARD_ADDRESS', 'reward']] as const) {
    const problem = checkServiceAddress(objects, env.get(key), service);
    if (problem) problems.push(`Deployment/trainer: ${key}=${problem}`);
  }

  const job = find(objects, 'Job', 'trainer-run');
  if (!job) return [...problems, 'Job/trainer-run: missing'];
  const jobPod = podTemplate(job);
  const jc = jobPod?.spec.containers[0];
  if (!jobPod || !jc) return [...problems, 'Job/trainer-run: no container'];
  if (jobPod.spec.restartPolicy !== 'Never') problems.push(`Job/trainer-run: restartPolicy ${jobPod.spec.restartPolicy}, expected Never (the Job ends with the run's outcome)`);
  const argv = [...(jc.command ?? []), ...(jc.args ?? [])];
  const at = argv.findIndex((a, i) => a === 'trainer' && argv[i + 1] === 'run');
  const configPath = argv.includes('--config') ? argv[argv.indexOf('--config') + 1] : undefined;
  if (at < 0 || !configPath) return [...problems, `Job/trainer-run: runs "${argv.join(' ')}", expected posttrain trainer run --config <file>`];
  const { volume } = volumeOf(jobPod, jc, configPath);
  const cm = volume?.configMap && find(objects, 'ConfigMap', volume.configMap.name);
  const key = configPath.split('/').pop() as string;
  if (!cm) return [...problems, `Job/trainer-run: --config ${configPath} is on no ConfigMap volume of the overlay`];
  const text = cm.data?.[key];
  if (!text) return [...problems, `Job/trainer-run: ConfigMap/${cm.metadata.name} has no key ${key} (--config ${configPath})`];
  const runConfig = parse(text) as { output_dir?: string };
  problems.push(...checkRunsVolume(job, jobPod, runConfig.output_dir, objects));
  return problems;
}

/** '' when `value` is dns:///<service>:<port> of a port of that Service; otherwise the problem. */
export function checkServiceAddress(objects: K8sObject[], value: string | null | undefined, service: string): string {
  const m = value === undefined || value === null ? null : /^dns:\/\/\/([a-z0-9-]+):(\d+)$/.exec(value);
  if (!m) return `${value}, expected dns:///${service}:<port>`;
  const svc = find(objects, 'Service', m[1]);
  const ports = ((svc?.spec as { ports?: Port[] } | undefined)?.ports ?? []).map((p) => p.port);
  if (m[1] !== service || !ports.includes(Number(m[2]))) return `${value} is no port of Service/${service}`;
  return '';
}

/**
 * Images come only from the overlay's `images:` block: every container image
 * is `newName:newTag` (or `name@digest`) of one of its entries, every entry
 * is used, and nothing runs `latest` or an untagged image.
 */
export function checkImages(objects: K8sObject[], images: { name: string; newName?: string; newTag?: string; digest?: string }[]): string[] {
  const problems: string[] = [];
  const pinned = new Map(images.map((i) => [i.digest ? `${i.newName ?? i.name}@${i.digest}` : `${i.newName ?? i.name}:${i.newTag}`, i.name]));
  const used = new Set<string>();
  for (const o of objects) {
    const pod = podTemplate(o);
    for (const c of pod?.spec.containers ?? []) {
      const image = c.image ?? '';
      if (!pinned.has(image)) problems.push(`${id(o)}: container ${c.name} runs ${image || '(no image)'}, which the overlay's images block does not pin`);
      else used.add(image);
      const tag = image.includes('@') ? 'digest' : /:([^/:]+)$/.exec(image)?.[1];
      if (!tag || tag === 'latest') problems.push(`${id(o)}: container ${c.name} image ${image} has no pinned tag`);
    }
  }
  for (const [ref, name] of pinned) if (!used.has(ref)) problems.push(`images block: ${name} -> ${ref} is used by no container`);
  return problems;
}
