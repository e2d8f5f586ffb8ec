// The pod runner's own tests: namespaces, tmpfs volumes, users, probes, lifecycle and cleanup, with
// hand-written pods (a shell "agent" stands in for the real one here; test/e2e runs the real one).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { APP_IMAGES, testImages } from './images.ts';
import { PodFailedError, runPod } from './pod-runner.ts';
import type { Pod, RunPodOptions, RunningPod } from './pod-runner.ts';
import { containerArgv, containerEnv, containerUser, expand, quantityBytes } from './pod-spec.ts';
import type { Status } from '../apps/secrets-dir.ts';

const images = testImages();
const running: RunningPod[] = [];
after(async () => {
  await Promise.all(running.map((p) => p.stop()));
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function status(pod: RunningPod, port = 8080): Promise<Status> {
  for (let i = 0; ; i++) {
    const answer = await pod
      .request(port, '/status')
      .catch((e: unknown) => (i < 50 ? undefined : Promise.reject(e as Error)));
    if (answer !== undefined) return JSON.parse(answer.body) as Status;
    await sleep(100);
  }
}

/** A pod whose containers run once (restartPolicy Never), like a Job's. */
function oneShotPod(
  metadata: NonNullable<Pod['metadata']>,
  spec: Omit<NonNullable<Pod['spec']>, 'restartPolicy'>,
): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: { restartPolicy: 'Never', ...spec } };
}

/** Runs a one-shot pod and waits until it has Succeeded. */
async function runToSuccess(pod: Pod, options: Omit<RunPodOptions, 'images'> = {}): Promise<RunningPod> {
  const run = await runPod(pod, { images, ...options });
  running.push(run);
  assert.equal(await run.completion(30_000), 'Succeeded', run.allLogs());
  return run;
}

// A native-sidecar pod in the shape the webhook produces: the sidecar writes the file and then serves its
// startup probe; the app mounts the memory volume read-only and runs as UID 1000 with fsGroup 2000.
function sidecarPod(app: string, shareProcessNamespace: boolean): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'runner-', namespace: 'team-a' },
    spec: {
      shareProcessNamespace,
      terminationGracePeriodSeconds: 2,
      securityContext: { runAsUser: 1000, fsGroup: 2000 },
      volumes: [{ name: 'secrets', emptyDir: { medium: 'Memory', sizeLimit: '2Mi' } }],
      initContainers: [
        {
          name: 'writer',
          image: APP_IMAGES.shell,
          restartPolicy: 'Always',
          args: [
            'sleep 0.3; echo "$POD_NAME" > /sidekey/secrets/greeting; exec python3 -m http.server -b 127.0.0.1 8099 -d /sidekey/secrets',
          ],
          env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
          volumeMounts: [{ name: 'secrets', mountPath: '/sidekey/secrets' }],
          startupProbe: { httpGet: { path: '/greeting', port: 8099 }, periodSeconds: 1, failureThreshold: 30 },
          securityContext: {
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
          },
        },
      ],
      containers: [
        {
          name: 'app',
          image: app,
          volumeMounts: [{ name: 'secrets', mountPath: '/var/run/secrets/sidekey', readOnly: true }],
        },
      ],
    },
  };
}

void describe('pod runner', { timeout: 60_000 }, () => {
  for (const [app, shared] of [
    [APP_IMAGES.node, true],
    [APP_IMAGES.python, false],
  ] as const) {
    void it(`runs a native-sidecar pod (${app}, shareProcessNamespace=${shared})`, async () => {
      const pod = await runPod(sidecarPod(app, shared), { images });
      running.push(pod);
      assert.match(pod.name, /^runner-[0-9a-f]{5}$/);
      const started = pod.events.map((e) => `${e.container}:${e.what}`);
      assert.deepEqual(started, ['writer:started', 'writer:startup-probe-passed', 'app:started']);

      const seen = await status(pod);
      assert.equal(seen.uid, 1000);
      const greeting = seen.files.greeting;
      assert.ok(greeting !== undefined, 'the app sees the file the sidecar wrote before the app started');
      assert.equal(greeting.gid, 2000, 'fsGroup owns files in the volume (setgid directory)');

      const mount = pod.exec('app', ['findmnt', '-no', 'FSTYPE,OPTIONS', '/var/run/secrets/sidekey']);
      assert.match(mount, /^tmpfs\s+ro,/);
      assert.match(mount, /size=2048k/);
      const groups = /^Groups:\s*(.*)$/m
        .exec(readFileSync(`/proc/${String(pod.mainPid('app'))}/status`, 'utf8'))?.[1]
        ?.trim();
      assert.equal(groups, '2000');
      assert.match(pod.exec('writer', ['findmnt', '-no', 'OPTIONS', '/']), /^ro,/, 'readOnlyRootFilesystem');
      const writerStatus = readFileSync(`/proc/${String(pod.mainPid('writer'))}/status`, 'utf8');
      assert.match(writerStatus, /^NoNewPrivs:\s*1$/m);
      assert.match(writerStatus, /^CapBnd:\s*0+$/m);
      assert.equal(existsSync('/sidekey'), false, 'nothing is created on the host');

      const ns = (c: string): string => readlinkSync(`/proc/${String(pod.mainPid(c))}/ns/pid`);
      assert.equal(ns('app') === ns('writer'), shared);
      assert.notEqual(ns('app'), readlinkSync('/proc/self/ns/pid'));
      assert.equal(seen.pid === 1, !shared, 'the app is PID 1 only in a PID namespace of its own');
      assert.notEqual(readlinkSync(`/proc/${String(pod.mainPid('app'))}/ns/net`), readlinkSync('/proc/self/ns/net'));

      const before = seen.pid;
      await pod.request(8080, '/reload', { method: 'POST' });
      const after = await status(pod);
      assert.deepEqual([after.pid, after.reloads, after.reasons.at(-1)], [before, 1, 'http']);
      await pod.stop();
      assert.equal(pod.mainPid('app'), undefined);
    });
  }

  void it('runs a Job: init container, app exits, the sidecar is then stopped', async () => {
    const run = await runToSuccess(
      oneShotPod(
        { name: 'job', namespace: 'batch' },
        {
          volumes: [{ name: 'work', emptyDir: {} }],
          initContainers: [
            {
              name: 'prepare',
              image: APP_IMAGES.shell,
              args: ['echo "$(NS)" > /data/ns'],
              env: [{ name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }],
              volumeMounts: [{ name: 'work', mountPath: '/data' }],
            },
            {
              name: 'side',
              image: APP_IMAGES.shell,
              restartPolicy: 'Always',
              args: ['trap "echo got TERM; exit 0" TERM; while true; do sleep 0.1; done'],
            },
          ],
          containers: [
            {
              name: 'main',
              image: APP_IMAGES.node,
              env: [
                { name: 'APP_ONCE', value: '1' },
                { name: 'APP_SECRETS_DIR', value: '/data' },
                { name: 'APP_EXPECT', value: 'ns' },
              ],
              volumeMounts: [{ name: 'work', mountPath: '/data' }],
            },
          ],
        },
      ),
    );
    assert.equal(run.exitCode('prepare'), 0);
    assert.equal(run.exitCode('main'), 0);
    assert.match(run.logs('side'), /got TERM/);
    assert.equal(run.exitCode('side'), 0);
  });

  void it('fails the pod when an init container fails, and leaves nothing behind', async () => {
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'broken' },
      spec: {
        volumes: [{ name: 'm', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }],
        initContainers: [
          {
            name: 'init',
            image: APP_IMAGES.shell,
            args: ['echo cannot fetch >&2; exit 3'],
            volumeMounts: [{ name: 'm', mountPath: '/m' }],
          },
        ],
        containers: [{ name: 'never', image: APP_IMAGES.node }],
      },
    };
    const events: string[] = [];
    await assert.rejects(
      runPod(pod, { images, onEvent: (e) => events.push(`${e.container}:${e.what}`) }),
      (error: unknown) =>
        error instanceof PodFailedError &&
        /init container "init" exited with code 3/.test(error.message) &&
        /cannot fetch/.test(error.logs),
    );
    assert.deepEqual(events, ['init:started', 'init:exited']);
    assert.deepEqual(
      readdirSync(tmpdir()).filter((n) => n.startsWith('sidekey-pod-broken-')),
      [],
    );
  });

  void it('lets the pod reach the services it is given on its own loopback, and nothing else', async () => {
    const server = createServer((_, res) => res.end('pong'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const other = createServer((_, res) => res.end('secret'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const otherPort = (other.address() as AddressInfo).port;
    try {
      const pod = oneShotPod(
        { name: 'net' },
        {
          containers: [
            {
              name: 'c',
              image: APP_IMAGES.shell,
              args: [`curl -sf http://127.0.0.1:${port}/ && ! curl -sf -m 2 http://127.0.0.1:${otherPort}/`],
            },
          ],
        },
      );
      const run = await runToSuccess(pod, { services: [port] });
      assert.match(run.logs('c'), /pong/);
    } finally {
      server.close();
      other.close();
    }
  });

  void it('projects the service-account token volume the API server adds', async () => {
    const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
    const pod = oneShotPod(
      { name: 'sa', namespace: 'team-b' },
      {
        serviceAccountName: 'payments',
        securityContext: { runAsUser: 1000 },
        volumes: [
          {
            name: 'kube-api-access-x1',
            projected: {
              sources: [
                { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
                { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
              ],
            },
          },
        ],
        containers: [
          {
            name: 'c',
            image: APP_IMAGES.shell,
            args: [`echo "$(cat ${sa}/namespace) $(cat ${sa}/token)"`],
            volumeMounts: [{ name: 'kube-api-access-x1', mountPath: sa, readOnly: true }],
          },
        ],
      },
    );
    const run = await runToSuccess(pod, { serviceAccountToken: (ns, name) => `token-for-${ns}-${name}` });
    assert.equal(run.logs('c').trim(), 'team-b token-for-team-b-payments');
  });

  void it('refuses what it cannot run faithfully', async () => {
    const base: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'x' },
      spec: { containers: [{ name: 'c', image: 'nginx:1' }] },
    };
    await assert.rejects(runPod(base, { images }), /no mapping for image "nginx:1"/);
    const hostPath: Pod = {
      ...base,
      spec: {
        volumes: [{ name: 'h', hostPath: { path: '/etc' } }],
        containers: [
          { name: 'c', image: APP_IMAGES.shell, args: ['true'], volumeMounts: [{ name: 'h', mountPath: '/h' }] },
        ],
      },
    };
    await assert.rejects(runPod(hostPath, { images }), /only emptyDir and projected volumes are supported/);
  });
});

void describe('pod spec reading', () => {
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'n', labels: { app: 'x' } },
    spec: { securityContext: { runAsUser: 10, fsGroup: 20, supplementalGroups: [30] }, containers: [] },
  };
  const identity = { name: 'p', namespace: 'n', uid: 'u' };

  void it('expands $(VAR) like Kubernetes', () => {
    assert.equal(expand('a $(X) $(Y) $$(X) $$', { X: '1' }), 'a 1 $(Y) $(X) $');
  });

  void it('builds env from values, fieldRefs and the image', () => {
    const env = containerEnv(
      pod,
      identity,
      {
        name: 'c',
        env: [
          { name: 'A', value: 'x-$(POD)' },
          { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'B', value: '$(POD)/$(NS)' },
          { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'L', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        ],
      },
      { entrypoint: ['e'], env: { IMG: '1' } },
    );
    assert.deepEqual([env.A, env.B, env.NS, env.L, env.IMG, env.HOSTNAME], ['x-$(POD)', 'p/$(NS)', 'n', 'x', '1', 'p']);
    assert.throws(
      () =>
        containerEnv(
          pod,
          identity,
          { name: 'c', env: [{ name: 'S', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] },
          { entrypoint: [] },
        ),
      /only value and valueFrom.fieldRef/,
    );
  });

  void it('resolves the command line as a runtime does', () => {
    const image = { entrypoint: ['ep'], cmd: ['default'] };
    assert.deepEqual(containerArgv({ name: 'c' }, image, {}), ['ep', 'default']);
    assert.deepEqual(containerArgv({ name: 'c', args: ['$(X)'] }, image, { X: 'y' }), ['ep', 'y']);
    assert.deepEqual(containerArgv({ name: 'c', command: ['other'] }, image, {}), ['other']);
  });

  void it('takes the user from the container, then the pod, with fsGroup as a group', () => {
    assert.deepEqual(containerUser(pod, { name: 'c' }), { uid: 10, gid: 0, groups: [30, 20] });
    assert.deepEqual(containerUser(pod, { name: 'c', securityContext: { runAsUser: 5, runAsGroup: 6 } }), {
      uid: 5,
      gid: 6,
      groups: [30, 20],
    });
    assert.throws(
      () => containerUser({ ...pod, spec: { containers: [] } }, { name: 'c', securityContext: { runAsNonRoot: true } }),
      /runAsNonRoot/,
    );
  });

  void it('sizes memory quantities', () => {
    assert.deepEqual(
      ['1Mi', '512Ki', '1G', '1.5Mi', 100].map(quantityBytes),
      [1_048_576, 524_288, 1e9, 1_572_864, 100],
    );
    assert.throws(() => quantityBytes('1 MB'), /not a memory quantity/);
  });
});
