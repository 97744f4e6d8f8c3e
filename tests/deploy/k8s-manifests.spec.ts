import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseBackendName } from '@posttrain/backend';
import { renderKustomize, validateObject, modelPath, parseManifests, type K8sObject } from './kustomize';
import { checkAutoscaling, checkImages, checkServices, checkTrainer, checkWorkloads, effectiveEnv, find, podTemplate, quantity, WORKLOADS } from './manifest-checks';

// Renders deploy/k8s (base and each overlay) with `kubectl kustomize`,
// validates every object against the Kubernetes schema, and checks the
// deployment design: headless Services with named gRPC ports, native gRPC
// probes, the HPA on the sampler, the trainer as a Job on a volume, images
// pinned only through each overlay's images block, GPUs only in the gpu overlay.

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
          'Deployment/policy-sampler',
          'Deployment/reference',
          'Deployment/reward',
          'HorizontalPodAutoscaler/policy-sampler',
          'Job/trainer',
          'PersistentVolumeClaim/posttrain-models',
          'PersistentVolumeClaim/posttrain-runs',
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

      test('the trainer is a Job writing runs to a PersistentVolumeClaim and dialling the other Services', () => {
        assert.deepEqual(checkTrainer(get(overlay)), []);
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

  test('local: small requests (at most 500m CPU, 1 GiB) and single-node volumes', () => {
    const objects = get('local');
    for (const name of Object.keys(WORKLOADS)) {
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
      const job = podTemplate(find(objects, 'Job', 'trainer') as K8sObject) ?? assert.fail('no job');
      job.spec.volumes = job.spec.volumes?.filter((v) => v.name !== 'data');
      const problems = [...checkImages(objects, images), ...checkAutoscaling(objects, { local: false }), ...checkTrainer(objects)];
      assert.ok(problems.includes('Deployment/reward: container reward runs ghcr.io/posttrain/reward:latest, which the overlay\'s images block does not pin'), problems.join('\n'));
      assert.ok(problems.includes('Deployment/reward: container reward image ghcr.io/posttrain/reward:latest has no pinned tag'), problems.join('\n'));
      assert.ok(problems.includes('images block: posttrain/reward -> ghcr.io/posttrain/reward:0.1.0-gpu is used by no container'), problems.join('\n'));
      assert.ok(problems.includes('HorizontalPodAutoscaler/policy-sampler: scales apps/v1 Deployment/reference, expected apps/v1 Deployment/policy-sampler'), problems.join('\n'));
      assert.ok(problems.includes('Job/trainer: the runs volume data is not a PersistentVolumeClaim'), problems.join('\n'));
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
