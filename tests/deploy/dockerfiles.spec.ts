import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseBackendName } from '@posttrain/backend';
import { copyArgs, dockerignoreMatcher, execForm, parseDockerfile, parseInstructions, stageEnv, type Dockerfile, type Stage } from './dockerfile';

// No Docker engine runs here or in CI, so the images are checked by reading
// their Dockerfiles: everything a build copies exists and is not excluded by
// .dockerignore, the entry point is a real service, ports agree with the
// services' defaults, pinned versions agree with the lock file, and the
// process does not run as root.

const root = join(__dirname, '..', '..');
const SERVICES = ['policy-sampler', 'reference', 'reward', 'trainer'] as const;
const METRICS_PORT = '9090';

function defaultPort(service: string): string {
  const src = readFileSync(join(root, 'services', service, 'src', 'main.ts'), 'utf8');
  const m = /defaultPort:\s*(\d+)/.exec(src);
  if (!m) throw new Error(`services/${service}/src/main.ts: no defaultPort found`);
  return m[1];
}

function lockedVersion(pkg: string): string {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
  const v = lock.packages[`node_modules/${pkg}`]?.version;
  if (!v) throw new Error(`package-lock.json: no node_modules/${pkg}`);
  return v;
}

const ignored = dockerignoreMatcher(readFileSync(join(root, '.dockerignore'), 'utf8'));

/** Every problem with one Dockerfile, as "line N: ..." strings. */
function dockerfileProblems(df: Dockerfile, service: string, gpu: boolean): string[] {
  const problems: string[] = [];
  const port = defaultPort(service);
  const stageNames = new Set<string>();
  for (const stage of df.stages) {
    for (const ins of stage.instructions) {
      if (ins.keyword === 'ADD') problems.push(`line ${ins.line}: ADD; use COPY for files from the context`);
      if (ins.keyword !== 'COPY') continue;
      const c = copyArgs(ins);
      if (c.from !== undefined) {
        if (!stageNames.has(c.from)) problems.push(`line ${c.line}: COPY --from=${c.from} names no earlier stage`);
        continue;
      }
      for (const s of c.sources) {
        if (!existsSync(join(root, s))) problems.push(`line ${c.line}: COPY source ${s} does not exist in the repository`);
        else if (ignored(s)) problems.push(`line ${c.line}: COPY source ${s} is excluded by .dockerignore`);
      }
    }
    if (stage.name) stageNames.add(stage.name);
  }
  const final = df.stages[df.stages.length - 1];
  if (!final) return ['no FROM'];
  const last = (kw: string) => final.instructions.filter((i) => i.keyword === kw).pop();

  const entry = last('ENTRYPOINT');
  if (!entry) problems.push('final stage: no ENTRYPOINT');
  else {
    const argv = execForm(entry);
    const want = ['node', '--import', 'tsx', `services/${service}/src/main.ts`];
    if (JSON.stringify(argv) !== JSON.stringify(want)) problems.push(`line ${entry.line}: ENTRYPOINT ${JSON.stringify(argv)}, expected ${JSON.stringify(want)}`);
    const workdir = last('WORKDIR')?.args;
    if (workdir !== '/app') problems.push(`final stage: WORKDIR ${workdir}, expected /app (the ENTRYPOINT's path is relative to it)`);
    if (!existsSync(join(root, argv[3] ?? ''))) problems.push(`line ${entry.line}: ENTRYPOINT file ${argv[3]} does not exist`);
  }

  // What the service reads at run time must be in the final image.
  const copied = final.instructions.filter((i) => i.keyword === 'COPY').map(copyArgs);
  const fromContext = new Set(copied.filter((c) => c.from === undefined).flatMap((c) => c.sources.map((s) => s.replace(/\/$/, ''))));
  for (const need of ['package.json', 'libs', 'services', 'protos', 'bin']) if (!fromContext.has(need)) problems.push(`final stage: does not COPY ${need}`);
  if (!copied.some((c) => c.from !== undefined && c.destination.startsWith('node_modules'))) problems.push('final stage: copies no node_modules from a build stage');

  const exposed = final.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
  if (!exposed.includes(port)) problems.push(`final stage: EXPOSE ${exposed.join(' ')} lacks the gRPC port ${port} (services/${service}/src/main.ts defaultPort)`);
  if (!exposed.includes(METRICS_PORT)) problems.push(`final stage: EXPOSE ${exposed.join(' ')} lacks the metrics port ${METRICS_PORT}`);

  const env = stageEnv(final);
  const expectEnv: Record<string, string> = { POSTTRAIN_HOST: '0.0.0.0', POSTTRAIN_PORT: port, POSTTRAIN_METRICS_PORT: METRICS_PORT, POSTTRAIN_PROTOS_DIR: '/app/protos' };
  // The trainer writes runs; /app is root's, so it needs a directory of its own (the Deployment and the trainer-run Job mount the runs volume there).
  if (service === 'trainer') expectEnv.POSTTRAIN_RUNS_DIR = '/data/runs';
  for (const [k, v] of Object.entries(expectEnv)) if (env.get(k) !== v) problems.push(`final stage: ENV ${k}=${env.get(k)}, expected ${v}`);
  const backend = env.get('POSTTRAIN_BACKEND');
  if (backend === undefined) problems.push('final stage: POSTTRAIN_BACKEND not set');
  else {
    try {
      const b = parseBackendName(backend, 'POSTTRAIN_BACKEND');
      const want = gpu ? 'tensorflow-gpu' : 'wasm';
      if (b !== want) problems.push(`final stage: POSTTRAIN_BACKEND=${backend}, expected ${want}`);
    } catch (err) {
      problems.push(`final stage: ${(err as Error).message}`);
    }
  }

  const user = last('USER')?.args.trim();
  if (!user) problems.push('final stage: no USER (the container would run as root)');
  else if (!/^[1-9]\d*(:\d+)?$/.test(user)) problems.push(`final stage: USER ${user}, expected a numeric non-root uid (Kubernetes runAsNonRoot can only verify numbers)`);

  const runs = df.stages.flatMap((s) => s.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args));
  const installsGpu = runs.some((r) => /npm install\b.*@tensorflow\/tfjs-node-gpu@/.test(r));
  if (gpu && !installsGpu) problems.push('GPU variant: no RUN npm install @tensorflow/tfjs-node-gpu@<version>');
  if (!gpu && installsGpu) problems.push('CPU variant installs @tensorflow/tfjs-node-gpu');
  if (!runs.some((r) => /npm ci --omit=dev/.test(r))) problems.push('no RUN npm ci --omit=dev (dependencies from the lock file)');

  // Pinned versions must follow the lock file, or the image runs other code than CI tested.
  for (const stage of df.stages) {
    for (const ins of stage.instructions.filter((i) => i.keyword === 'ARG')) {
      const [name, value] = ins.args.split('=');
      if (name === 'TSX_VERSION' && value !== lockedVersion('tsx')) problems.push(`line ${ins.line}: TSX_VERSION=${value}, package-lock.json has tsx ${lockedVersion('tsx')}`);
      if (name === 'TFJS_VERSION' && value !== lockedVersion('@tensorflow/tfjs-core')) problems.push(`line ${ins.line}: TFJS_VERSION=${value}, package-lock.json has @tensorflow/tfjs-core ${lockedVersion('@tensorflow/tfjs-core')}`);
    }
  }
  const baseImage = (s: Stage) => s.image;
  if (!gpu && baseImage(final) !== 'node:20-bookworm-slim') problems.push(`CPU variant: final image ${final.image}, expected node:20-bookworm-slim`);
  if (gpu && !/^nvidia\/cuda:[\d.]+-cudnn\d*-runtime-/.test(baseImage(final))) problems.push(`GPU variant: final image ${final.image}, expected an nvidia/cuda cudnn runtime image`);
  for (const s of df.stages) if (/:latest$/.test(s.image) || !/[:@]/.test(s.image.split('/').pop() ?? '')) if (!stageNames.has(s.image)) problems.push(`line ${s.line}: FROM ${s.image} is not pinned to a tag`);
  return problems;
}

describe('Dockerfile parsing', () => {
  test('joins continuations, drops comments inside them, substitutes global ARGs', () => {
    const df = parseDockerfile(['# syntax=docker/dockerfile:1', 'ARG BASE=node:20', 'FROM ${BASE} AS deps', 'RUN a \\', '# note', '  && b', 'FROM deps', 'ENV A=1 B="two"', 'USER 1000:1000'].join('\n'));
    assert.equal(df.stages.length, 2);
    assert.deepEqual(df.stages[0], { image: 'node:20', name: 'deps', line: 3, instructions: [{ keyword: 'RUN', args: 'a && b', line: 4 }] });
    assert.deepEqual([...stageEnv(df.stages[1])], [['A', '1'], ['B', 'two']]);
  });

  test('an unknown ARG in FROM and an unfinished continuation are errors with their line', () => {
    assert.throws(() => parseDockerfile('FROM ${NOPE}\n'), /^Error: line 1: \$\{NOPE\} is not a declared ARG/);
    assert.throws(() => parseInstructions('FROM x\nRUN a \\\n'), /^Error: line 2: the file ends inside a continued instruction/);
  });

  test('COPY flags, sources and destination; exec form', () => {
    assert.deepEqual(copyArgs({ keyword: 'COPY', args: '--from=deps --chown=1:1 /a/ b c/', line: 7 }), { from: 'deps', sources: ['/a/', 'b'], destination: 'c/', line: 7 });
    assert.deepEqual(execForm({ keyword: 'ENTRYPOINT', args: '["node", "x.ts"]', line: 1 }), ['node', 'x.ts']);
    assert.throws(() => execForm({ keyword: 'ENTRYPOINT', args: 'node x.ts', line: 3 }), /line 3: ENTRYPOINT is not in exec form/);
  });

  test('.dockerignore matching: directories, ** and re-inclusion', () => {
    const m = dockerignoreMatcher('**/node_modules\nruns\n.nx/\n**/*.spec.ts\n!keep.spec.ts\n');
    assert.equal(m('node_modules'), true);
    assert.equal(m('libs/rpc/node_modules/x/index.js'), true);
    assert.equal(m('runs/abc/metrics.jsonl'), true);
    assert.equal(m('.nx/cache'), true);
    assert.equal(m('libs/rpc/src/server.spec.ts'), true);
    assert.equal(m('keep.spec.ts'), false);
    assert.equal(m('libs/rpc/src/server.ts'), false);
    assert.equal(m('runsheet.txt'), false);
  });
});

describe('.dockerignore', () => {
  test('keeps node_modules, runs/ and .nx/ out of the build context, sources in', () => {
    for (const p of ['node_modules', 'node_modules/tsx/package.json', 'libs/model/node_modules/x', 'runs', 'runs/demo/metrics.jsonl', '.nx', '.nx/workspace-data/x', '.git/HEAD']) assert.equal(ignored(p), true, p);
    for (const p of ['package.json', 'package-lock.json', 'libs/rpc/src/protos.ts', 'services/reward/src/main.ts', 'protos/posttrain/v1/tensor.proto', 'bin/posttrain.js']) assert.equal(ignored(p), false, p);
  });
});

describe('service Dockerfiles', () => {
  test('one CPU and one GPU Dockerfile per service, nothing else', () => {
    const dirs = readdirSync(join(root, 'deploy', 'docker')).sort();
    assert.deepEqual(dirs, [...SERVICES].sort());
    for (const s of SERVICES) assert.deepEqual(readdirSync(join(root, 'deploy', 'docker', s)).sort(), ['Dockerfile', 'Dockerfile.gpu']);
  });

  for (const service of SERVICES) {
    for (const gpu of [false, true]) {
      const file = `deploy/docker/${service}/Dockerfile${gpu ? '.gpu' : ''}`;
      test(`${file} is buildable from the repository and runs the service`, () => {
        const df = parseDockerfile(readFileSync(join(root, file), 'utf8'));
        assert.deepEqual(dockerfileProblems(df, service, gpu), []);
      });
    }
  }

  test('the checks catch a missing source, a root user, a wrong port and a missing GPU install', () => {
    const good = readFileSync(join(root, 'deploy/docker/reward/Dockerfile.gpu'), 'utf8');
    const broken = good
      .replace('COPY protos/ protos/', 'COPY protoz/ protos/')
      .replace(/USER 1000:1000\n(?![\s\S]*USER)/, 'USER root\n')
      .replace('EXPOSE 50053 9090', 'EXPOSE 50051 9090')
      .replace('@tensorflow/tfjs-node-gpu@${TFJS_VERSION}', '@tensorflow/tfjs-node@${TFJS_VERSION}');
    const problems = dockerfileProblems(parseDockerfile(broken), 'reward', true);
    assert.ok(problems.some((p) => /COPY source protoz\/ does not exist/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /USER root, expected a numeric non-root uid/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /lacks the gRPC port 50053/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /GPU variant: no RUN npm install @tensorflow\/tfjs-node-gpu/.test(p)), problems.join('\n'));
  });
});
