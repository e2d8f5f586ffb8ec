// A real single-node Kubernetes for the end-to-end tests and for people (`npm run cluster -- up|down|status`):
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd and the kubelet, built and installed
// by scripts/setup-cluster.ts, started inside namespaces this module creates (see layout.ts and
// supervisor.ts). Root only. `down` leaves nothing outside the state folder, and removes that too.
//
//   const cluster = await clusterUp();            // or attachCluster() to a cluster that is up
//   await cluster.kubectl(['get', 'pods', '-A']);
//   const bao = await cluster.exposeToPods(port);  // pods dial bao.address (NODE_IP:port)
//   await clusterDown();
import { execFile, execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLUSTER_BINARIES, clusterBinary, installClusterTools } from '../../scripts/setup-cluster.ts';
import { TOOLS_DIR } from '../../scripts/setup-tools.ts';
import { freePort, startProcess } from '../../devkit/process.ts';
import type { ManagedProcess } from '../../devkit/process.ts';
import { writeConfigs } from './configs.ts';
import { processesMentioning } from './footprint.ts';
import { API_SERVICE_IP, BRIDGE, NODE_BIN, NODE_IP, NODE_NAME, POD_CIDR, clusterLayout } from './layout.ts';
import type { ClusterLayout, ClusterRecord } from './layout.ts';
import { ensurePki } from './pki.ts';

const run = promisify(execFile);
const HERE = import.meta.dirname;
const UP_TIMEOUT_MS = 180_000;

export interface ExposedPort {
  /** host:port a pod dials (the node's address in the cluster's namespace). */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface Cluster {
  readonly layout: ClusterLayout;
  readonly record: ClusterRecord;
  /** The apiserver as the host sees it. */
  readonly server: string;
  readonly caPem: string;
  /** Runs kubectl as the cluster admin; resolves to stdout, rejects with stderr. */
  kubectl(args: readonly string[], input?: string): Promise<string>;
  /** Runs the project's helm against the cluster. */
  helm(args: readonly string[]): Promise<string>;
  /** Imports a docker-archive image into the node's containerd (namespace k8s.io, where the kubelet looks). */
  importImage(archive: string): Promise<void>;
  /** Makes 127.0.0.1:<port> of the host reachable from pods at NODE_IP:<port>. */
  exposeToPods(port: number): Promise<ExposedPort>;
  /** The whole cluster's (components and pods) memory peak and CPU time so far, from its own cgroup. */
  usage(): ClusterUsage;
}

export interface ClusterUsage {
  /** The cgroup's peak, page cache (image layers, etcd, logs) included. */
  readonly peakMemoryBytes: number;
  /** Anonymous memory now (the processes' own). */
  readonly rssBytes: number;
  readonly cpuSeconds: number;
}

export interface ClusterOptions {
  readonly stateDir?: string;
  /** Progress lines (e.g. process.stderr.write). */
  readonly log?: (line: string) => void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readRecord(layout: ClusterLayout): ClusterRecord | undefined {
  if (!existsSync(layout.recordFile)) return undefined;
  return JSON.parse(readFileSync(layout.recordFile, 'utf8')) as ClusterRecord;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Thrown by a probe to stop waiting at once (a process it waits for has died). */
class GaveUp extends Error {}

async function until(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean> | boolean,
  diagnose: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const done = await Promise.resolve()
      .then(probe)
      .catch((error: unknown) => {
        if (error instanceof GaveUp) throw new Error(`${what}: ${error.message}\n${diagnose()}`, { cause: error });
        return false;
      });
    if (done) return;
    await sleep(250);
  }
  throw new Error(`${what} within ${timeoutMs} ms\n${diagnose()}`);
}

/** The last lines of each component log: what a failed start shows. */
export function logTails(layout: ClusterLayout, lines = 15): string {
  if (!existsSync(layout.logDir)) return '(no logs)';
  return readdirSync(layout.logDir)
    .sort()
    .map((file) => {
      const text = readFileSync(join(layout.logDir, file), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      return `--- ${file}\n${text}`;
    })
    .join('\n');
}

/** Every mounted cgroup hierarchy (v1 controllers, named ones and the unified v2 tree). */
function cgroupMounts(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[2] === 'cgroup' || fields[2] === 'cgroup2')
    .map((fields) => fields[1] ?? '')
    .filter((dir) => dir !== '');
}

function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
  }
  rmdirSync(dir);
}

function createNetns(layout: ClusterLayout): void {
  const ip = (args: readonly string[]): void => void runOrExplain('ip', args);
  ip(['netns', 'add', layout.netns]);
  ip(['-n', layout.netns, 'link', 'set', 'lo', 'up']);
  // The bridge exists before the first pod: the kubelet checks that its node IP is a local address.
  ip(['-n', layout.netns, 'link', 'add', BRIDGE, 'type', 'bridge']);
  ip(['-n', layout.netns, 'addr', 'add', `${NODE_IP}/${POD_CIDR.split('/')[1] ?? '16'}`, 'dev', BRIDGE]);
  ip(['-n', layout.netns, 'link', 'set', BRIDGE, 'up']);
}

function runOrExplain(command: string, args: readonly string[]): string {
  try {
    return execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || (error as Error).message}`, {
      cause: error,
    });
  }
}

/** Starts a detached process (it outlives the caller) logging to a file; resolves to its pid. */
function spawnDetached(layout: ClusterLayout, logName: string, command: string, args: readonly string[]): number {
  const log = openSync(join(layout.logDir, logName), 'a');
  const child = spawn(command, args, { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  return child.pid;
}

function requireBinaries(): void {
  const missing = CLUSTER_BINARIES.filter((b) => !existsSync(clusterBinary(b)));
  if (missing.length > 0)
    throw new Error(`cluster binaries missing (${missing.join(', ')}): run "npm run setup" first`);
  if (process.getuid?.() !== 0) throw new Error('the test cluster needs root (namespaces, mounts, cgroups)');
}

export async function clusterUp(options: ClusterOptions = {}): Promise<Cluster> {
  const layout = clusterLayout(options.stateDir);
  const log = options.log ?? (() => undefined);
  requireBinaries();
  const existing = readRecord(layout);
  if (existing !== undefined && alive(existing.initPid))
    throw new Error(`a cluster is already up in ${layout.stateDir}: run "npm run cluster -- down" first`);
  await clusterDown(options);
  const started = Date.now();
  mkdirSync(layout.logDir, { recursive: true });
  const pki = ensurePki(layout.pkiDir, {
    nodeName: NODE_NAME,
    nodeIp: NODE_IP,
    apiserverIps: ['127.0.0.1', API_SERVICE_IP, NODE_IP],
  });
  const apiPort = await freePort();
  writeConfigs(layout, pki, apiPort);
  createNetns(layout);
  for (const hierarchy of cgroupMounts()) mkdirSync(join(hierarchy, layout.cgroupRoot), { recursive: true });
  const unsharePid = spawnDetached(layout, 'supervisor.log', 'nsenter', [
    `--net=/run/netns/${layout.netns}`,
    '--',
    'unshare',
    '--mount',
    '--propagation',
    'slave',
    '--pid',
    '--fork',
    '--mount-proc',
    '--kill-child=SIGTERM',
    '--',
    clusterBinary('pause'),
    NODE_BIN,
    join(HERE, 'supervisor.ts'),
    layout.stateDir,
  ]);
  const forwarderPid = spawnDetached(layout, 'forwarder.log', NODE_BIN, [
    join(HERE, 'forwarder.ts'),
    'host',
    layout.stateDir,
    String(apiPort),
  ]);
  let initPid = 0;
  await until(
    'the cluster namespaces did not start',
    10_000,
    () => {
      initPid = Number(
        readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim().split(' ')[0] ?? 0,
      );
      return initPid > 0;
    },
    () => logTails(layout),
  );
  const record: ClusterRecord = { apiPort, unsharePid, initPid, forwarderPid, startedAt: new Date().toISOString() };
  writeFileSync(layout.recordFile, JSON.stringify(record, null, 2));
  const cluster = attachCluster(options);
  try {
    await until(
      'the cluster components were not ready',
      UP_TIMEOUT_MS,
      () => {
        if (!alive(initPid)) throw new GaveUp('the supervisor exited');
        return existsSync(layout.readyFile);
      },
      () => logTails(layout),
    );
    log(`components ready in ${Date.now() - started} ms`);
    await until(
      `node ${NODE_NAME} was not Ready and untainted`,
      UP_TIMEOUT_MS,
      async () => {
        const state = await cluster.kubectl([
          'get',
          'node',
          NODE_NAME,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.spec.taints}',
        ]);
        return state.trim() === 'True';
      },
      () => logTails(layout),
    );
    await until(
      'the default service account was not created',
      60_000,
      async () => {
        await cluster.kubectl(['get', 'serviceaccount', 'default', '-n', 'default']);
        return true;
      },
      () => logTails(layout),
    );
    log(`node Ready in ${Date.now() - started} ms`);
  } catch (error) {
    await clusterDown(options);
    throw error;
  }
  return cluster;
}

/** A handle on the cluster that `up` started in this state folder. */
export function attachCluster(options: ClusterOptions = {}): Cluster {
  const layout = clusterLayout(options.stateDir);
  const record = readRecord(layout);
  if (record === undefined) throw new Error(`no cluster in ${layout.stateDir}: run "npm run cluster -- up"`);
  const caPem = readFileSync(join(layout.pkiDir, 'ca.crt'), 'utf8');
  const kubeEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: layout.stateDir, KUBECONFIG: layout.kubeconfig };
  const tool = async (binary: string, args: readonly string[], input?: string): Promise<string> => {
    const child = run(binary, [...args], { env: kubeEnv, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
    if (input !== undefined) child.child.stdin?.end(input);
    try {
      return (await child).stdout;
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(
        `${binary.split('/').at(-1) ?? binary} ${args.join(' ')}: ${stderr.trim() || (error as Error).message}`,
        { cause: error },
      );
    }
  };
  return {
    layout,
    record,
    server: `https://127.0.0.1:${record.apiPort}`,
    caPem,
    kubectl: (args, input) => tool(clusterBinary('kubectl'), args, input),
    helm: (args) => tool(join(TOOLS_DIR, 'bin', 'helm'), args),
    async importImage(archive): Promise<void> {
      await tool('ctr', [
        '--address',
        layout.containerdSocket,
        '-n',
        'k8s.io',
        'images',
        'import',
        '--no-unpack=false',
        archive,
      ]);
    },
    usage(): ClusterUsage {
      const text = (controller: string, file: string): string =>
        readFileSync(join('/sys/fs/cgroup', controller, layout.cgroupRoot, file), 'utf8');
      const rss = /^total_rss (\d+)$/m.exec(text('memory', 'memory.stat'))?.[1] ?? '0';
      return {
        peakMemoryBytes: Number(text('memory', 'memory.max_usage_in_bytes')),
        rssBytes: Number(rss),
        cpuSeconds: Number(text('cpuacct', 'cpuacct.usage')) / 1e9,
      };
    },
    async exposeToPods(port): Promise<ExposedPort> {
      const proc: ManagedProcess = startProcess('nsenter', [
        `--net=/run/netns/${layout.netns}`,
        '--',
        NODE_BIN,
        join(HERE, 'forwarder.ts'),
        'egress',
        layout.stateDir,
        String(port),
      ]);
      await until(
        `the egress forward of port ${port} did not start`,
        10_000,
        () => {
          if (proc.child.exitCode !== null) throw new GaveUp('it exited');
          return proc.output().includes('ready');
        },
        () => proc.output(),
      );
      return { address: `${NODE_IP}:${port}`, host: NODE_IP, port, stop: () => proc.stop() };
    },
  };
}

async function stopPid(pid: number, graceMs: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  while (alive(pid)) await sleep(50);
}

/**
 * Stops the cluster of this state folder and removes everything it made: its processes (PID 1 of its PID
 * namespace ends them all), mounts (gone with its mount namespace), network namespace, cgroups and the
 * state folder. Safe to run when nothing is up, or after a crash left pieces behind.
 */
export async function clusterDown(options: ClusterOptions = {}): Promise<void> {
  const layout = clusterLayout(options.stateDir);
  const record = readRecord(layout);
  if (record !== undefined) {
    // SIGTERM to unshare reaches PID 1 (--kill-child=SIGTERM), which passes it to the supervisor.
    if (alive(record.unsharePid)) process.kill(record.unsharePid, 'SIGTERM');
    await stopPid(record.initPid, 60_000);
    await stopPid(record.forwarderPid, 5000);
  }
  // What a crashed run left without a record: e.g. egress forwarders of a test process that was killed.
  for (const line of processesMentioning(layout.stateDir)) await stopPid(Number(line.split(':')[0]), 5000);
  for (const hierarchy of cgroupMounts()) {
    const root = join(hierarchy, layout.cgroupRoot);
    // A cgroup can be removed only once the kernel has let go of its last task: retry briefly.
    await until(
      `cgroup ${root} could not be removed`,
      15_000,
      () => {
        removeCgroupTree(root);
        return true;
      },
      () => `tasks left: ${existsSync(join(root, 'tasks')) ? readFileSync(join(root, 'tasks'), 'utf8') : '?'}`,
    );
  }
  if (existsSync(`/run/netns/${layout.netns}`)) runOrExplain('ip', ['netns', 'delete', layout.netns]);
  rmSync(layout.stateDir, { recursive: true, force: true });
}

export interface ClusterStatus {
  readonly up: boolean;
  readonly record?: ClusterRecord;
  readonly nodes?: string;
}

export async function clusterStatus(options: ClusterOptions = {}): Promise<ClusterStatus> {
  const layout = clusterLayout(options.stateDir);
  const record = readRecord(layout);
  if (record === undefined || !alive(record.initPid)) return { up: false };
  const nodes = await attachCluster(options)
    .kubectl(['get', 'nodes', '-o', 'wide'])
    .catch((e: unknown) => `(apiserver: ${(e as Error).message})`);
  return { up: true, record, nodes };
}

export { installClusterTools };
