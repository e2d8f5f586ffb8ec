// The test cluster's main process. cluster.ts starts it inside the cluster's network namespace and a new mount
// and PID namespace (`pause` as PID 1 above it): when it exits, every process of the cluster — components,
// containerd's shims, containers — ends with the namespace, and every mount (tmpfs volumes, container root
// filesystems) with the mount namespace.
//   node supervisor.ts <stateDir>
// It first makes the mount namespace keep the host untouched, then starts etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd and the kubelet, each logging to <stateDir>/logs/, serves
// api.sock for the host, writes <stateDir>/ready, and on SIGTERM stops them in reverse order.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterBinary } from '../../scripts/setup-cluster.ts';
import { httpCall } from '../../devkit/http.ts';
import { serveUnixToTcp } from '../../devkit/pod-runner/forward.ts';
import { KERNEL_DEFAULTS } from './configs.ts';
import {
  ACCOUNTING_CONTROLLERS,
  API_PORT,
  API_SERVICE_IP,
  ETCD_PORT,
  NODE_IP,
  NODE_NAME,
  SERVICE_CIDR,
  clusterLayout,
} from './layout.ts';
import type { ClusterLayout } from './layout.ts';
import { pkiPaths } from './pki.ts';
import type { ClusterPki } from './pki.ts';

const STEP_TIMEOUT_MS = 90_000;

function mount(args: readonly string[]): void {
  execFileSync('mount', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * The kubelet checks kernel settings machine-wide (protectKernelDefaults) and containerd's shims and the CNI
 * plugins write below /run, /var/lib and /var/log. In this mount namespace (a slave of the host's: nothing
 * mounted here propagates back) the checked /proc/sys files are read-only binds of files holding the expected
 * values, /run is a private tmpfs, and /var/lib and /var/log are overlays whose upper layers are in the
 * state folder.
 */
function isolateMounts(layout: ClusterLayout): void {
  for (const key of Object.keys(KERNEL_DEFAULTS)) {
    const target = `/proc/sys/${key}`;
    mount(['--bind', join(layout.sysctlDir, key.replaceAll('/', '.')), target]);
    mount(['-o', 'remount,bind,ro', target]);
  }
  mount(['-t', 'tmpfs', '-o', 'mode=0755,nosuid,nodev', 'sidekey-run', '/run']);
  for (const dir of ['/var/lib', '/var/log']) {
    const base = join(layout.overlayDir, dir.replaceAll('/', '-').slice(1));
    mkdirSync(join(base, 'upper'), { recursive: true });
    mkdirSync(join(base, 'work'), { recursive: true });
    mount([
      '-t',
      'overlay',
      'sidekey-overlay',
      '-o',
      `lowerdir=${dir},upperdir=${base}/upper,workdir=${base}/work`,
      dir,
    ]);
  }
}

/**
 * Moves this process, and so every component it starts, into the cluster's own cgroup (the kubelet's
 * cgroupRoot, where the pods go too) in the memory and CPU-accounting hierarchies: the cluster's whole memory
 * peak and CPU time can then be read there (see cluster.ts usage()).
 */
function joinAccountingCgroups(layout: ClusterLayout): void {
  for (const controller of ACCOUNTING_CONTROLLERS) {
    const procs = join('/sys/fs/cgroup', controller, layout.cgroupRoot, 'cgroup.procs');
    if (existsSync(procs)) writeFileSync(procs, String(process.pid));
  }
}

interface Component {
  readonly name: string;
  readonly child: ChildProcess;
}

const running: Component[] = [];

function start(layout: ClusterLayout, name: string, binary: string, args: readonly string[]): Component {
  const log = openSync(join(layout.logDir, `${name}.log`), 'a');
  const child = spawn(binary, args, { stdio: ['ignore', log, log] });
  const component = { name, child };
  running.push(component);
  child.once('exit', (code, signal) => {
    if (!stopping)
      process.stderr.write(`[supervisor] ${name} exited (${signal ?? String(code)}); see logs/${name}.log\n`);
  });
  return component;
}

async function waitFor(what: string, component: Component, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (component.child.exitCode !== null || component.child.signalCode !== null)
      throw new Error(`${what} exited during start: see logs/${component.name}.log`);
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready within ${STEP_TIMEOUT_MS} ms: see logs/${component.name}.log`);
}

const httpOk = async (url: string, ca?: string): Promise<boolean> =>
  (await httpCall(new URL(url), { method: 'GET', ca, timeoutMs: 2000 })).status === 200;

function apiserverArgs(layout: ClusterLayout, pki: ClusterPki): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${ETCD_PORT}`,
    '--bind-address=0.0.0.0',
    `--secure-port=${API_PORT}`,
    `--advertise-address=${NODE_IP}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    `--tls-cert-file=${pki.apiserverCert}`,
    `--tls-private-key-file=${pki.apiserverKey}`,
    `--client-ca-file=${pki.caCert}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${pki.serviceAccountPub}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    `--kubelet-client-certificate=${pki.adminCert}`,
    `--kubelet-client-key=${pki.adminKey}`,
    `--kubelet-certificate-authority=${pki.caCert}`,
    '--kubelet-preferred-address-types=InternalIP',
    // No kube-proxy: the apiserver calls a webhook Service at its endpoint's address.
    '--enable-aggregator-routing=true',
    '--profiling=false',
    '--event-ttl=30m',
    `--cert-dir=${layout.pkiDir}`,
  ];
}

/** Only the controllers the tests need: service accounts and their CA, namespaces, GC, workloads, endpoints. */
const CONTROLLERS = [
  'serviceaccount-controller',
  'root-ca-certificate-publisher-controller',
  'namespace-controller',
  'garbage-collector-controller',
  'deployment-controller',
  'replicaset-controller',
  'endpoints-controller',
  'endpointslice-controller',
  'job-controller',
  'cronjob-controller',
  'ttl-after-finished-controller',
  'disruption-controller',
  'serviceaccount-token-controller',
  // Lifts the node's not-ready taint once the kubelet reports Ready (nothing is scheduled before).
  'node-lifecycle-controller',
];

async function startAll(layout: ClusterLayout, pki: ClusterPki): Promise<void> {
  const etcd = start(layout, 'etcd', clusterBinary('etcd'), [
    `--data-dir=${layout.etcdDir}`,
    '--unsafe-no-fsync',
    '--log-level=warn',
    '--name=sidekey-test',
    `--listen-client-urls=http://127.0.0.1:${ETCD_PORT}`,
    `--advertise-client-urls=http://127.0.0.1:${ETCD_PORT}`,
    '--listen-peer-urls=http://127.0.0.1:2380',
    '--initial-advertise-peer-urls=http://127.0.0.1:2380',
    '--initial-cluster=sidekey-test=http://127.0.0.1:2380',
    '--listen-metrics-urls=http://127.0.0.1:2381',
  ]);
  await waitFor('etcd', etcd, () => httpOk(`http://127.0.0.1:${ETCD_PORT}/health`));
  const apiserver = start(layout, 'kube-apiserver', clusterBinary('kube-apiserver'), apiserverArgs(layout, pki));
  const ca = readFileSync(pki.caCert, 'utf8');
  await waitFor('kube-apiserver', apiserver, () => httpOk(`https://127.0.0.1:${API_PORT}/readyz`, ca));
  start(layout, 'kube-controller-manager', clusterBinary('kube-controller-manager'), [
    `--kubeconfig=${layout.insideKubeconfig}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--controllers=${CONTROLLERS.join(',')}`,
    '--use-service-account-credentials=true',
    `--root-ca-file=${pki.caCert}`,
    `--service-account-private-key-file=${pki.serviceAccountKey}`,
    `--authentication-kubeconfig=${layout.insideKubeconfig}`,
    `--authorization-kubeconfig=${layout.insideKubeconfig}`,
  ]);
  start(layout, 'kube-scheduler', clusterBinary('kube-scheduler'), [
    `--kubeconfig=${layout.insideKubeconfig}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--authentication-kubeconfig=${layout.insideKubeconfig}`,
    `--authorization-kubeconfig=${layout.insideKubeconfig}`,
  ]);
  const containerd = start(layout, 'containerd', '/usr/bin/containerd', [
    '--config',
    layout.containerdConfig,
    '--log-level',
    'warn',
  ]);
  await waitFor('containerd', containerd, () => Promise.resolve(existsSync(layout.containerdSocket)));
  const kubelet = start(layout, 'kubelet', clusterBinary('kubelet'), [
    `--config=${layout.kubeletConfig}`,
    `--kubeconfig=${layout.nodeKubeconfig}`,
    `--root-dir=${layout.kubeletRoot}`,
    `--hostname-override=${NODE_NAME}`,
    `--node-ip=${NODE_IP}`,
    '--v=1',
  ]);
  await waitFor('kubelet', kubelet, () => httpOk('http://127.0.0.1:10248/healthz'));
}

let stopping = false;

/** Stops the components newest first (the kubelet before containerd, the apiserver before etcd), then exits. */
async function stopAll(code: number): Promise<never> {
  stopping = true;
  for (const { child } of running.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  process.exit(code);
}

async function main(stateDir: string | undefined): Promise<void> {
  if (stateDir === undefined) throw new Error('usage: supervisor.ts <stateDir>');
  const layout = clusterLayout(stateDir);
  process.on('SIGTERM', () => void stopAll(0));
  process.on('SIGINT', () => void stopAll(0));
  rmSync(layout.readyFile, { force: true });
  joinAccountingCgroups(layout);
  isolateMounts(layout);
  // The Service IP is an address of this namespace: pods (gateway NODE_IP) reach the apiserver on it directly.
  execFileSync('ip', ['addr', 'add', `${API_SERVICE_IP}/32`, 'dev', 'lo']);
  const pki = pkiPaths(layout.pkiDir);
  try {
    await startAll(layout, pki);
  } catch (error) {
    process.stderr.write(`[supervisor] ${(error as Error).message}\n`);
    await stopAll(1);
  }
  rmSync(layout.apiSocket, { force: true });
  await serveUnixToTcp(layout.apiSocket, (port) => port === API_PORT);
  writeFileSync(layout.readyFile, `${process.pid}\n`);
  process.stderr.write('[supervisor] ready\n');
}

await main(process.argv[2]);
