// Manifests and waits for the scenarios on the real cluster: pods as users write them (the apiserver's own
// admission adds the service-account token, the webhook the agent), read back through kubectl, and the stand-in
// app's /status read through the apiserver's pod proxy.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Status } from '../../devkit/apps/secrets-dir.ts';
import type { Cluster } from './cluster.ts';
import { NODE_BIN, PROJECT_ROOT } from './layout.ts';
import { APP_IMAGE } from './project-images.ts';
import { defined } from '../../injector/defined.ts';

export const APP_PORT = 8080;
export const APP_UID = 1000;
const IRSA_TOKEN_DIR = '/var/run/secrets/eks.amazonaws.com/serviceaccount';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface AppTemplateOptions {
  /** Without the sidekey.io/ prefix. */
  readonly annotations: Readonly<Record<string, string>>;
  readonly serviceAccount?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly restartPolicy?: 'Always' | 'Never' | 'OnFailure';
  /** Mount an IRSA-style projected token (audience sts.amazonaws.com) as the EKS webhook would. */
  readonly irsa?: boolean;
  readonly labels?: Readonly<Record<string, string>>;
}

type Json = Record<string, unknown>;

/** A pod template (metadata + spec) of the stand-in app, Pod Security "restricted", running as APP_UID. */
export function appTemplate(options: AppTemplateOptions): Json {
  const annotations = Object.fromEntries(Object.entries(options.annotations).map(([k, v]) => [`sidekey.io/${k}`, v]));
  const env = { APP_HOST: '0.0.0.0', ...options.env };
  const irsaVolume = {
    name: 'aws-iam-token',
    projected: {
      sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 3600, path: 'token' } }],
    },
  };
  return {
    metadata: { labels: { app: 'sidekey-e2e', ...options.labels }, annotations },
    spec: {
      terminationGracePeriodSeconds: 3,
      ...defined({ restartPolicy: options.restartPolicy }),
      ...defined({ serviceAccountName: options.serviceAccount }),
      securityContext: {
        runAsUser: APP_UID,
        runAsGroup: APP_UID,
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      ...(options.irsa === true ? { volumes: [irsaVolume] } : {}),
      containers: [
        {
          name: 'app',
          image: APP_IMAGE,
          imagePullPolicy: 'Never',
          env: Object.entries(env).map(([name, value]) => ({ name, value })),
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
          },
          ...(options.irsa === true
            ? { volumeMounts: [{ name: 'aws-iam-token', mountPath: IRSA_TOKEN_DIR, readOnly: true }] }
            : {}),
        },
      ],
    },
  };
}

export function podManifest(namespace: string, name: string, template: Json): Json {
  return { apiVersion: 'v1', kind: 'Pod', ...template, metadata: { ...(template.metadata as Json), name, namespace } };
}

export function deploymentManifest(namespace: string, name: string, template: Json): Json {
  const labels = { app: 'sidekey-e2e', workload: name };
  const metadata = { ...(template.metadata as Json), labels };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { ...template, metadata } },
  };
}

export async function apply(cluster: Cluster, manifest: Json): Promise<string> {
  return cluster.kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
}

/** A namespace (with labels) whose default service account exists, so pods can be created in it. */
export async function createNamespace(
  cluster: Cluster,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<void> {
  await apply(cluster, { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  await until(`service account default in ${name}`, 60_000, async () => {
    await cluster.kubectl(['get', 'serviceaccount', 'default', '-n', name]);
    return true;
  });
}

export async function until(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(500);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === '' ? '' : `: ${last}`}`);
}

export async function getJson<T = Json>(cluster: Cluster, args: readonly string[]): Promise<T> {
  return JSON.parse(await cluster.kubectl([...args, '-o', 'json'])) as T;
}

export interface PodView {
  readonly metadata: {
    name: string;
    generateName?: string;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
    ownerReferences?: { kind: string }[];
  };
  readonly spec: { initContainers?: Json[]; containers: Json[]; shareProcessNamespace?: boolean };
  readonly status: { phase?: string; containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[] };
}

export interface ContainerStatus {
  readonly name: string;
  readonly ready: boolean;
  readonly restartCount: number;
  readonly started?: boolean;
  readonly state?: { terminated?: { exitCode: number } };
}

/** The one pod of a workload (by its `workload` label) once it is Running with every container ready. */
export async function readyPod(
  cluster: Cluster,
  namespace: string,
  workload: string,
  timeoutMs = 120_000,
): Promise<PodView> {
  let found: PodView | undefined;
  await until(`a ready pod of ${workload}`, timeoutMs, async () => {
    const list = await getJson<{ items: PodView[] }>(cluster, [
      'get',
      'pods',
      '-n',
      namespace,
      '-l',
      `workload=${workload}`,
    ]);
    found = list.items.find(
      (p) => p.status.phase === 'Running' && (p.status.containerStatuses ?? []).every((c) => c.ready),
    );
    return found !== undefined;
  });
  return found as PodView;
}

/** Restart counts of every container of the pod, init (the native-sidecar agent) included. */
export async function restartCounts(cluster: Cluster, namespace: string, pod: string): Promise<Record<string, number>> {
  const view = await getJson<PodView>(cluster, ['get', 'pod', pod, '-n', namespace]);
  const all = [...(view.status.initContainerStatuses ?? []), ...(view.status.containerStatuses ?? [])];
  return Object.fromEntries(all.map((c) => [c.name, c.restartCount]));
}

/** The stand-in app's observations, through the apiserver's proxy to the pod's port. */
export async function appStatus(cluster: Cluster, namespace: string, pod: string): Promise<Status> {
  return JSON.parse(
    await cluster.kubectl(['get', '--raw', `/api/v1/namespaces/${namespace}/pods/${pod}:${APP_PORT}/proxy/status`]),
  ) as Status;
}

export async function waitForStatus(
  cluster: Cluster,
  pod: { namespace: string; name: string },
  what: string,
  predicate: (s: Status) => boolean,
  timeoutMs: number,
): Promise<Status> {
  let seen: Status | undefined;
  await until(what, timeoutMs, async () => {
    seen = await appStatus(cluster, pod.namespace, pod.name);
    return predicate(seen);
  });
  return seen as Status;
}

/** Where the stand-in app reads its files (the agent's default mount in the app container). */
export const APP_SECRETS_DIR = '/var/run/secrets/sidekey';

/** Runs a Node script in the app container, as the app's user (the image has no shell); resolves to its stdout. */
export async function inApp(
  cluster: Cluster,
  pod: { namespace: string; name: string },
  script: string,
  args: readonly string[] = [],
): Promise<string> {
  return cluster.kubectl([
    'exec',
    pod.name,
    '-n',
    pod.namespace,
    '-c',
    'app',
    '--',
    '/nodejs/bin/node',
    '-e',
    script,
    ...args,
  ]);
}

/**
 * The named files of the app's secrets directory, read in the app container as the app reads them. They hold
 * secrets: callers compare them and add them to the leak scan, never print them.
 */
export async function appFiles(
  cluster: Cluster,
  pod: { namespace: string; name: string },
  names: readonly string[],
): Promise<Record<string, string>> {
  const script = `const fs = require("fs"); process.stdout.write(JSON.stringify(Object.fromEntries(process.argv.slice(1).map((n) => [n, fs.readFileSync(${JSON.stringify(APP_SECRETS_DIR)} + "/" + n, "utf8")]))))`;
  return JSON.parse(await inApp(cluster, pod, script, names)) as Record<string, string>;
}

/**
 * The serial number (hex, as node:crypto prints it) of the certificate the app serves on `port`, as a client in the
 * pod sees it that trusts only the CA file `caFile` of the secrets directory and asks for `servername`: the
 * handshake fails unless that CA issued the certificate for that name.
 */
export async function servedSerial(
  cluster: Cluster,
  pod: { namespace: string; name: string },
  tls: { port: number; servername: string; caFile: string },
): Promise<string> {
  const options = `{ host: "127.0.0.1", port: ${tls.port}, servername: ${JSON.stringify(tls.servername)}, ca: require("fs").readFileSync(${JSON.stringify(`${APP_SECRETS_DIR}/${tls.caFile}`)}) }`;
  const script = `const s = require("tls").connect(${options}, () => { process.stdout.write(s.getPeerX509Certificate().serialNumber); s.destroy(); }); s.on("error", (e) => { process.stderr.write(String(e.code ?? e.message)); process.exit(1); });`;
  return inApp(cluster, pod, script);
}

/** Every container's log of a pod (agent included), for the leak scan. */
export async function podLogs(cluster: Cluster, namespace: string, pod: string): Promise<string> {
  return cluster.kubectl(['logs', pod, '-n', namespace, '--all-containers', '--prefix']);
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `sidekey status ARGS` as a user runs it: the CLI as a process (test/ does not import cli/) with only the
 * given kubeconfig, e.g. one of a service account holding just the RBAC the operator guide lists.
 */
export async function sidekeyStatus(kubeconfig: string, args: readonly string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      NODE_BIN,
      [join(PROJECT_ROOT, 'cli', 'sidekey.ts'), 'status', ...args],
      {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dirname(kubeconfig), KUBECONFIG: kubeconfig },
        timeout: 120_000,
      },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
      },
    );
  });
}

/** A service account bound to a role: a ClusterRole cluster-wide (ClusterRoleBinding), a Role in its namespace. */
export async function boundServiceAccount(
  cluster: Cluster,
  account: { readonly namespace: string; readonly name: string },
  role: { readonly kind: 'Role' | 'ClusterRole'; readonly name: string },
  binding: string,
): Promise<void> {
  await apply(cluster, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: account.name, namespace: account.namespace },
  });
  await apply(cluster, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: role.kind === 'Role' ? 'RoleBinding' : 'ClusterRoleBinding',
    metadata: { name: binding, ...(role.kind === 'Role' ? { namespace: account.namespace } : {}) },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', ...role },
    subjects: [{ kind: 'ServiceAccount', ...account }],
  });
}

/** A kubeconfig for `serviceAccount` of `namespace` (a token from the TokenRequest API), written to `path`. */
export async function serviceAccountKubeconfig(
  cluster: Cluster,
  namespace: string,
  serviceAccount: string,
  path: string,
): Promise<string> {
  const token = (await cluster.kubectl(['create', 'token', serviceAccount, '-n', namespace, '--duration=1h'])).trim();
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'e2e',
        cluster: {
          server: cluster.server,
          'certificate-authority-data': Buffer.from(cluster.caPem).toString('base64'),
        },
      },
    ],
    users: [{ name: serviceAccount, user: { token } }],
    contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: serviceAccount, namespace } }],
    'current-context': 'e2e',
  };
  writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
  return token;
}
