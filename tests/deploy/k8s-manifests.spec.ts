import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseBackendName } from '@posttrain/backend';
import { renderKustomize, renderWithComponents, validateObject, modelPath, parseManifests, type K8sObject } from './kustomize';
import { checkAutoscaling, checkImages, checkServices, checkServiceAddress, checkTrainer, checkWorkloads, effectiveEnv, find, podTemplate, quantity, WORKLOADS } from './manifest-checks';
import { checkDisruptionBudgets, checkNetworkPolicies, checkSecurityContexts, checkTls, ingressAllowed, PEERS, selects } from './policy-checks';
import { parseRunConfig } from '@posttrain/training';

// Renders deploy/k8s (base and each overlay) with `kubectl kustomize`,
// validates every object against the Kubernetes schema, and checks the
// deployment design: headless Services with named gRPC ports, native gRPC
// probes, the HPA on the sampler, disruption budgets, network policies,
// security contexts, the trainer as a Deployment and as a run Job on a
// volume, images pinned only through each overlay's images block, GPUs only
// in the gpu overlay, and the optional TLS component.

const root = join(__dirname, '..', '..');
const k8s = join(root, 'deploy', 'k8s');
const OVERLAYS = ['local', 'cpu', 'gpu'] as const;

interface Kustomization {
  resources?: string[];
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
  patches?: unknown[];
  replicas?: unknown[];
}
const kustomization = (dir: string) => parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;

const rendered = new Map<string, K8sObject[]>();
const clone = (objects: K8sObject[]) => structuredClone(objects);

describe('kustomize manifests', () => {
  before(() => {
    rendered.set('base', renderKustomize(join(k8s, 'base')));
    for (const o of OVERLAYS) rendered.set(o, renderKustomize(join(k8s, 'overlays', o)));
  });
  const get = (name: string) => rendered.get(name) as K8sObject[];

  test('the base holds no images, patches, replica counts or GPU settings', () => {
    const k = kustomization(join(k8s, 'base'));
    assert.deepEqual({ images: k.images, patches: k.patches, replicas: k.replicas }, { images: undefined, patches: undefined, replicas: undefined });
    const text = JSON.stringify(get('base'));
    assert.doesNotMatch(text, /nvidia|nodeSelector|tolerations/);
    assert.deepEqual(checkWorkloads(get('base'), { gpu: false }), []);
  });

  for (const overlay of OVERLAYS) {
    describe(`overlay ${overlay}`, () => {
      test('renders the same set of objects as the base, each valid against its schema', async () => {
        const objects = get(overlay);
        const names = (os: K8sObject[]) => os.map((o) => `${o.kind}/${o.metadata.name}`).sort();
        assert.deepEqual(names(objects), names(get('base')));
        assert.deepEqual(names(objects), [
          'ConfigMap/posttrain-common',
          'ConfigMap/trainer-run-config',
          'Deployment/policy-sampler',
          'Deployment/reference',
          'Deployment/reward',
          'Deployment/trainer',
          'HorizontalPodAutoscaler/policy-sampler',
          'Job/trainer-run',
          'NetworkPolicy/posttrain-serving',
          'NetworkPolicy/posttrain-trainer',
          'PersistentVolumeClaim/posttrain-models',
          'PersistentVolumeClaim/posttrain-runs',
          'PodDisruptionBudget/policy-sampler',
          'PodDisruptionBudget/reference',
          'PodDisruptionBudget/reward',
          'Service/policy-sampler',
          'Service/reference',
          'Service/reward',
          'Service/trainer',
        ]);
        for (const o of objects) await validateObject(o);
      });

      test('workloads: named ports, grpc probes, POSTTRAIN_* env, metrics, graceful shutdown, resources, model volume, GPUs only here if gpu', () => {
        assert.deepEqual(checkWorkloads(get(overlay), { gpu: overlay === 'gpu' }), []);
      });

      test('Services are headless with named grpc and metrics ports', () => {
        assert.deepEqual(checkServices(get(overlay)), []);
      });

      test('the HPA scales the sampler Deployment, which leaves replicas to it', () => {
        assert.deepEqual(checkAutoscaling(get(overlay), { local: overlay === 'local' }), []);
      });

      test('the trainer: a one-replica Deployment and a run Job, both writing runs to the PersistentVolumeClaim; the Deployment dials the other Services', () => {
        assert.deepEqual(checkTrainer(get(overlay)), []);
      });

      test('every serving tier has a disruption budget that still lets a node drain', () => {
        assert.deepEqual(checkDisruptionBudgets(get(overlay)), []);
      });

      test('network policies: serving gRPC from the trainer and labelled clients, the Trainer API from labelled clients, metrics from Prometheus, nothing else', () => {
        assert.deepEqual(checkNetworkPolicies(get(overlay)), []);
      });

      test('every pod runs as non-root with RuntimeDefault seccomp; no container escalates, keeps capabilities or writes its root filesystem', () => {
        assert.deepEqual(checkSecurityContexts(get(overlay)), []);
      });

      test('without the tls component no TLS variable is set', () => {
        assert.deepEqual(checkTls(get(overlay), { tls: false }), []);
      });

      test('every image comes from the images block, pinned, none latest', () => {
        const images = kustomization(join(k8s, 'overlays', overlay)).images ?? [];
        assert.deepEqual(images.map((i) => i.name).sort(), Object.keys(WORKLOADS).map((w) => `posttrain/${w}`).sort());
        assert.deepEqual(checkImages(get(overlay), images), []);
        const variant = overlay === 'gpu' ? /-gpu$/ : /-cpu$/;
        for (const i of images) assert.match(i.newTag ?? '', variant, `${i.name} in the ${overlay} overlay`);
      });

      test('POSTTRAIN_BACKEND is a backend libs/backend accepts', () => {
        const cm = find(get(overlay), 'ConfigMap', 'posttrain-common');
        const backend = parseBackendName(cm?.data?.POSTTRAIN_BACKEND ?? '(unset)', 'POSTTRAIN_BACKEND');
        assert.equal(backend, overlay === 'gpu' ? 'tensorflow-gpu' : 'wasm');
      });
    });
  }

  test('the trainer-run Job runs a valid run config whose services are the overlay\'s Services', () => {
    const objects = get('cpu');
    const text = find(objects, 'ConfigMap', 'trainer-run-config')?.data?.['run.yaml'] ?? assert.fail('no run.yaml');
    const config = parseRunConfig(parse(text), 'trainer-run-config/run.yaml');
    const services = config.grpo?.services ?? assert.fail(`stage ${config.stage}, expected grpo`);
    assert.deepEqual(
      [services.sampler_addresses.length, checkServiceAddress(objects, `dns:///${services.sampler_dns}`, 'policy-sampler'), checkServiceAddress(objects, services.reference_address, 'reference'), checkServiceAddress(objects, services.reward_address, 'reward')],
      [0, '', '', ''],
    );
  });

  for (const overlay of OVERLAYS) {
    test(`the tls component on ${overlay}: mutual TLS from a mounted Secret in every Deployment, client TLS in the Job, probes on the plaintext health port`, async () => {
      const objects = renderWithComponents(join(k8s, 'overlays', overlay), [join(k8s, 'components', 'tls')]);
      for (const o of objects) await validateObject(o);
      assert.deepEqual(checkTls(objects, { tls: true }), []);
      assert.deepEqual(checkWorkloads(objects, { gpu: overlay === 'gpu' }), []);
      assert.deepEqual([...checkSecurityContexts(objects), ...checkNetworkPolicies(objects), ...checkDisruptionBudgets(objects), ...checkTrainer(objects)], []);
      const sampler = podTemplate(find(objects, 'Deployment', 'policy-sampler') as K8sObject)?.spec.containers[0];
      assert.equal(sampler?.livenessProbe?.grpc?.port, 8081);
      assert.equal(sampler && effectiveEnv(sampler, objects).env.get('POSTTRAIN_HEALTH_PORT'), '8081');
    });
  }

  test('local: small requests (at most 500m CPU, 1 GiB) and single-node volumes', () => {
    const objects = get('local');
    for (const name of [...Object.keys(WORKLOADS), 'trainer-run']) {
      const w = objects.find((o) => o.metadata.name === name && (o.kind === 'Deployment' || o.kind === 'Job')) as K8sObject;
      const req = podTemplate(w)?.spec.containers[0].resources?.requests ?? {};
      assert.ok(quantity(req.cpu) <= 0.5 && quantity(req.memory) <= 2 ** 30, `${name}: requests ${JSON.stringify(req)}`);
    }
    for (const o of objects.filter((x) => x.kind === 'PersistentVolumeClaim')) assert.deepEqual((o.spec as { accessModes: string[] }).accessModes, ['ReadWriteOnce'], o.metadata.name);
  });

  test('gpu: the sampler also scales on Generate calls in flight (a Pods metric)', () => {
    const hpa = find(get('gpu'), 'HorizontalPodAutoscaler', 'policy-sampler');
    const metrics = (hpa?.spec as { metrics: { type: string; pods?: { metric: { name: string } } }[] }).metrics;
    assert.deepEqual(metrics.map((m) => m.type), ['Pods', 'Resource']);
    assert.equal(metrics[0].pods?.metric.name, 'posttrain_generate_inflight');
  });

  describe('the checks fail on broken manifests', () => {
    test('a ClusterIP Service, an HTTP readiness probe, a GPU on CPU and a wrong POSTTRAIN_PORT are reported', () => {
      const objects = clone(get('cpu'));
      (find(objects, 'Service', 'reward')?.spec as { clusterIP?: string }).clusterIP = '10.0.0.7';
      const sampler = podTemplate(find(objects, 'Deployment', 'policy-sampler') as K8sObject)?.spec.containers[0];
      assert.ok(sampler);
      sampler.readinessProbe = { httpGet: { path: '/healthz', port: 8080 } };
      (sampler.resources as { limits: Record<string, string> }).limits['nvidia.com/gpu'] = '1';
      const reference = podTemplate(find(objects, 'Deployment', 'reference') as K8sObject)?.spec.containers[0];
      reference?.env?.push({ name: 'POSTTRAIN_PORT', value: '50051' });
      const problems = [...checkServices(objects), ...checkWorkloads(objects, { gpu: false })];
      assert.ok(problems.includes('Service/reward: clusterIP 10.0.0.7, expected None (headless, for client-side round-robin)'), problems.join('\n'));
      assert.ok(problems.includes('Deployment/policy-sampler: readinessProbe is not a native grpc probe'), problems.join('\n'));
      assert.ok(problems.includes('Deployment/policy-sampler: GPU limits, node selectors or tolerations outside the gpu overlay'), problems.join('\n'));
      assert.ok(problems.includes('Deployment/reference: POSTTRAIN_PORT=50051, expected 50052'), problems.join('\n'));
    });

    test('a shutdown grace longer than the termination grace period is reported', () => {
      const objects = clone(get('cpu'));
      const pod = podTemplate(find(objects, 'Deployment', 'reward') as K8sObject) ?? assert.fail('no pod');
      // preStop 5 s + 20 s drain = 25 s < 30 s passes; 25 s does not exceed 25 s.
      pod.spec.terminationGracePeriodSeconds = 25;
      assert.deepEqual(checkWorkloads(objects, { gpu: false }), ['Deployment/reward: terminationGracePeriodSeconds 25 s does not exceed preStop 5 s + POSTTRAIN_SHUTDOWN_GRACE_MS 20000 ms']);
    });

    test('a latest or unpinned image, an HPA on the wrong target and a trainer without its volume are reported', () => {
      const objects = clone(get('gpu'));
      const images = kustomization(join(k8s, 'overlays', 'gpu')).images ?? [];
      const reward = podTemplate(find(objects, 'Deployment', 'reward') as K8sObject)?.spec.containers[0];
      if (reward) reward.image = 'ghcr.io/posttrain/reward:latest';
      (find(objects, 'HorizontalPodAutoscaler', 'policy-sampler')?.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name = 'reference';
      const trainer = podTemplate(find(objects, 'Deployment', 'trainer') as K8sObject) ?? assert.fail('no trainer');
      trainer.spec.volumes = trainer.spec.volumes?.filter((v) => v.name !== 'data');
      const problems = [...checkImages(objects, images), ...checkAutoscaling(objects, { local: false }), ...checkTrainer(objects)];
      assert.ok(problems.includes('Deployment/reward: container reward runs ghcr.io/posttrain/reward:latest, which the overlay\'s images block does not pin'), problems.join('\n'));
      assert.ok(problems.includes('Deployment/reward: container reward image ghcr.io/posttrain/reward:latest has no pinned tag'), problems.join('\n'));
      assert.ok(problems.includes('images block: posttrain/reward -> ghcr.io/posttrain/reward:0.1.0-gpu is used by no container'), problems.join('\n'));
      assert.ok(problems.includes('HorizontalPodAutoscaler/policy-sampler: scales apps/v1 Deployment/reference, expected apps/v1 Deployment/policy-sampler'), problems.join('\n'));
      assert.ok(problems.includes('Deployment/trainer: the runs volume data is not a PersistentVolumeClaim'), problems.join('\n'));
    });

    const without = (objects: K8sObject[], kind: string, name: string) => {
      const out = objects.filter((o) => !(o.kind === kind && o.metadata.name === name));
      assert.equal(out.length, objects.length - 1, `${kind}/${name} was rendered`);
      return out;
    };

    for (const tier of ['policy-sampler', 'reference', 'reward']) {
      test(`removing the ${tier} PodDisruptionBudget is reported`, () => {
        assert.deepEqual(checkDisruptionBudgets(without(get('cpu'), 'PodDisruptionBudget', tier)), [`Deployment/${tier}: no PodDisruptionBudget selects its pods`]);
      });
    }

    test('a disruption budget that blocks drains is reported', () => {
      const objects = clone(get('cpu'));
      (find(objects, 'PodDisruptionBudget', 'reward')?.spec as Record<string, unknown>).maxUnavailable = 0;
      const spec = find(objects, 'PodDisruptionBudget', 'reference')?.spec as Record<string, unknown>;
      delete spec.maxUnavailable;
      spec.minAvailable = 1;
      assert.deepEqual(checkDisruptionBudgets(objects), ['PodDisruptionBudget/reference: minAvailable 1, expected maxUnavailable (a tier of one pod could never be drained)', 'PodDisruptionBudget/reward: maxUnavailable 0, expected at least 1 (0 blocks every drain)']);
    });

    test('removing the serving NetworkPolicy opens the serving tiers to every pod', () => {
      const problems = checkNetworkPolicies(without(get('cpu'), 'NetworkPolicy', 'posttrain-serving'));
      for (const tier of ['policy-sampler', 'reference', 'reward']) {
        for (const line of [`Deployment/${tier}: an unlabelled pod reaches its grpc port`, `Deployment/${tier}: Prometheus reaches its grpc port`, `Deployment/${tier}: an unlabelled pod reaches its metrics port`]) assert.ok(problems.includes(line), `${line}\n-- got:\n${problems.join('\n')}`);
      }
      assert.ok(!problems.some((p) => p.startsWith('Deployment/trainer')), problems.join('\n'));
    });

    test('removing the trainer NetworkPolicy opens the Trainer API to every pod', () => {
      const problems = checkNetworkPolicies(without(get('cpu'), 'NetworkPolicy', 'posttrain-trainer'));
      assert.ok(problems.includes('Deployment/trainer: an unlabelled pod reaches its grpc port'), problems.join('\n'));
      assert.ok(problems.includes('Deployment/trainer: the trainer reaches its grpc port'), problems.join('\n'));
    });

    test('a rule open to every pod, or Prometheus left out, is reported', () => {
      const objects = clone(get('cpu'));
      const spec = find(objects, 'NetworkPolicy', 'posttrain-serving')?.spec as { ingress: { from?: unknown[] }[] };
      delete spec.ingress[0].from;
      spec.ingress.pop(); // the metrics rule
      const problems = checkNetworkPolicies(objects);
      assert.ok(problems.includes('Deployment/reward: an unlabelled pod reaches its grpc port'), problems.join('\n'));
      assert.ok(problems.includes('Deployment/reward: Prometheus cannot reach its metrics port'), problems.join('\n'));
      // What the evaluator decides on its own: selectors and namespaces.
      const sampler = find(get('cpu'), 'Deployment', 'policy-sampler') as K8sObject;
      assert.equal(ingressAllowed(get('cpu'), sampler, PEERS.otherNamespace, 'grpc'), false);
      assert.equal(ingressAllowed(get('cpu'), sampler, PEERS.prometheus, 'metrics'), true);
      assert.equal(selects({ matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }] }, { a: 'y' }), false);
      assert.equal(selects({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, {}), true);
    });

    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
      test(`removing the trainer's ${kind} is reported`, () => {
        const objects = clone(get('cpu'));
        const c = podTemplate(find(objects, 'Deployment', 'trainer') as K8sObject)?.spec.containers[0] ?? assert.fail('no container');
        delete c[kind];
        assert.deepEqual(checkWorkloads(objects, { gpu: false }), [`Deployment/trainer: ${kind} is not a native grpc probe`]);
      });
    }

    test('removing a pod or a container security context is reported, for Deployments and the Job', () => {
      const objects = clone(get('gpu'));
      delete podTemplate(find(objects, 'Deployment', 'reference') as K8sObject)?.spec.securityContext;
      const job = podTemplate(find(objects, 'Job', 'trainer-run') as K8sObject) ?? assert.fail('no job');
      delete job.spec.containers[0].securityContext;
      assert.deepEqual(checkSecurityContexts(objects), [
        'Deployment/reference: pod securityContext.runAsNonRoot is undefined, expected true',
        'Deployment/reference: pod securityContext.seccompProfile.type is undefined, expected RuntimeDefault',
        'Job/trainer-run: container trainer-run allowPrivilegeEscalation is undefined, expected false',
        'Job/trainer-run: container trainer-run readOnlyRootFilesystem is undefined, expected true',
        'Job/trainer-run: container trainer-run does not drop ALL capabilities',
      ]);
    });

    test('a trainer-run Job that restarts in place or runs no config is reported; so is a second trainer replica', () => {
      const objects = clone(get('local'));
      const job = podTemplate(find(objects, 'Job', 'trainer-run') as K8sObject) ?? assert.fail('no job');
      job.spec.restartPolicy = 'OnFailure';
      (find(objects, 'Deployment', 'trainer')?.spec as { replicas: number }).replicas = 2;
      assert.deepEqual(checkTrainer(objects), ['Deployment/trainer: 2 replicas, expected 1 (one process owns the runs directory)', 'Job/trainer-run: restartPolicy OnFailure, expected Never (the Job ends with the run\'s outcome)']);
      job.spec.containers[0].args = ['trainer', 'run', '--config', '/elsewhere/run.yaml'];
      assert.deepEqual(checkTrainer(objects).slice(-1), ['Job/trainer-run: --config /elsewhere/run.yaml is on no ConfigMap volume of the overlay']);
    });

    test('TLS without the plaintext health port, a TLS file on no Secret, or TLS variables without the component are reported', () => {
      const objects = renderWithComponents(join(k8s, 'overlays', 'cpu'), [join(k8s, 'components', 'tls')]);
      const reward = podTemplate(find(objects, 'Deployment', 'reward') as K8sObject) ?? assert.fail('no reward');
      const c = reward.spec.containers[0];
      c.env = c.env?.filter((e) => e.name !== 'POSTTRAIN_HEALTH_PORT');
      c.volumeMounts = c.volumeMounts?.filter((m) => m.name !== 'tls');
      const problems = [...checkWorkloads(objects, { gpu: false }), ...checkTls(objects, { tls: true })];
      assert.ok(problems.includes("Deployment/reward: POSTTRAIN_TLS_CERT is set but POSTTRAIN_HEALTH_PORT is not: the kubelet's plaintext gRPC probes would fail the TLS handshake"), problems.join('\n'));
      assert.ok(problems.includes('Deployment/reward: startupProbe.grpc.port 8081, expected 50053'), problems.join('\n'));
      assert.ok(problems.includes('Deployment/reward: POSTTRAIN_TLS_CERT=/etc/posttrain/tls/tls.crt is on no mounted Secret volume'), problems.join('\n'));
      assert.ok(checkTls(objects, { tls: false }).includes('Deployment/trainer: POSTTRAIN_TLS_CERT=/etc/posttrain/tls/tls.crt is set, expected TLS off without the tls component'));
    });

    test('schema validation rejects a wrongly typed field and names the object', async () => {
      const [bad] = parseManifests(
        'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    spec:\n      containers: [{name: c, image: i, ports: [{containerPort: grpc}]}]\n',
        'inline',
      );
      await assert.rejects(validateObject(bad), /^Error: Deployment\/broken does not match the apps\/v1 schema: .*containerPort must be integer/);
      assert.equal(modelPath('autoscaling/v2', 'HorizontalPodAutoscaler'), 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler');
      assert.equal(modelPath('v1', 'Service'), 'kubernetes-models/v1/Service');
    });

    test('envFrom resolves ConfigMaps, env overrides them', () => {
      const objects = parseManifests('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: common}\ndata: {A: "1", B: "2"}\n', 'inline');
      const { env, problems } = effectiveEnv({ name: 'c', envFrom: [{ configMapRef: { name: 'common' } }, { configMapRef: { name: 'missing' } }], env: [{ name: 'B', value: '3' }] }, objects);
      assert.deepEqual([...env].sort(), [['A', '1'], ['B', '3']]);
      assert.deepEqual(problems, ['container c: envFrom names ConfigMap missing, which the overlay does not create']);
    });
  });
});
