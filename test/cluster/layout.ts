// Where the test cluster keeps everything, and the addresses inside its network namespace. Shared by the
// host side (cluster.ts), the process that runs inside the namespaces (supervisor.ts) and the forwarders.
//
// Network: the whole cluster lives in a network namespace of its own. Its bridge `cni0` holds the node's
// address (NODE_IP, the pods' gateway); the kubernetes Service IP is a local address of that namespace, so pods
// reach the apiserver (port 443) without kube-proxy. The host's network namespace gets no address, route,
// bridge or firewall rule: the host reaches the apiserver through a Unix socket (api.sock), and pods reach test
// servers on the host's loopback through another (egress.sock), see forwarder.ts.
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';

export const NODE_NAME = 'sidekey-node';
export const POD_CIDR = '10.88.0.0/16';
export const NODE_IP = '10.88.0.1';
export const SERVICE_CIDR = '10.96.0.0/16';
export const API_SERVICE_IP = '10.96.0.1';
export const API_PORT = 443;
export const ETCD_PORT = 2379;
export const BRIDGE = 'cni0';
export const PAUSE_IMAGE = 'sidekey.test/pause:1';
/** cgroup v1 hierarchies the whole cluster is accounted in (its cgroupRoot holds the components and the pods). */
export const ACCOUNTING_CONTROLLERS = ['memory', 'cpuacct'] as const;

export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..');
export const NODE_BIN = join(PROJECT_ROOT, 'node_modules', '.bin', 'node');
export const DEFAULT_STATE_DIR = join(PROJECT_ROOT, '.tools', 'cluster', 'state');

/** Names derived from the state folder, so two checkouts (a person's cluster and a CI clone) never collide. */
function instanceName(stateDir: string): string {
  return `sidekey-${createHash('sha256').update(stateDir).digest('hex').slice(0, 8)}`;
}

export interface ClusterLayout {
  readonly stateDir: string;
  /** The network namespace (ip netns) holding the whole cluster. */
  readonly netns: string;
  /** The kubelet's cgroupRoot, created in every cgroup hierarchy at `up` and removed at `down`. */
  readonly cgroupRoot: string;
  readonly pkiDir: string;
  readonly logDir: string;
  readonly etcdDir: string;
  readonly containerdRoot: string;
  readonly containerdState: string;
  readonly containerdSocket: string;
  readonly containerdConfig: string;
  readonly cniConfDir: string;
  readonly cniDataDir: string;
  readonly kubeletRoot: string;
  readonly kubeletConfig: string;
  readonly podLogsDir: string;
  /** Upper and work folders of the overlays that keep stray writes under /var/lib and /var/log in the state folder. */
  readonly overlayDir: string;
  readonly sysctlDir: string;
  /** Kubeconfigs: admin on the host (through the forward), admin and node inside the namespace. */
  readonly kubeconfig: string;
  readonly insideKubeconfig: string;
  readonly nodeKubeconfig: string;
  readonly apiSocket: string;
  readonly egressSocket: string;
  /** JSON written by the host side once the cluster is up (ClusterRecord). */
  readonly recordFile: string;
  /** Written by the supervisor once every component is ready. */
  readonly readyFile: string;
}

export function clusterLayout(stateDir: string = DEFAULT_STATE_DIR): ClusterLayout {
  const at = (...parts: string[]): string => join(stateDir, ...parts);
  const name = instanceName(stateDir);
  return {
    stateDir,
    netns: name,
    cgroupRoot: name,
    pkiDir: at('pki'),
    logDir: at('logs'),
    etcdDir: at('etcd'),
    containerdRoot: at('containerd', 'root'),
    containerdState: at('containerd', 'state'),
    containerdSocket: at('containerd', 'containerd.sock'),
    containerdConfig: at('containerd', 'config.toml'),
    cniConfDir: at('cni', 'net.d'),
    cniDataDir: at('cni', 'data'),
    kubeletRoot: at('kubelet'),
    kubeletConfig: at('kubelet-config.yaml'),
    podLogsDir: at('pod-logs'),
    overlayDir: at('overlay'),
    sysctlDir: at('sysctl'),
    kubeconfig: at('kubeconfig'),
    insideKubeconfig: at('inside.kubeconfig'),
    nodeKubeconfig: at('node.kubeconfig'),
    apiSocket: at('api.sock'),
    egressSocket: at('egress.sock'),
    recordFile: at('cluster.json'),
    readyFile: at('ready'),
  };
}

/** What `up` leaves for `down`, `status` and the tests: the host-side port and the processes to stop. */
export interface ClusterRecord {
  /** The apiserver as the host sees it: https://127.0.0.1:<apiPort>. */
  readonly apiPort: number;
  /** `unshare`, which started the namespaces (its death tells PID 1 of the cluster to stop). */
  readonly unsharePid: number;
  /** PID 1 of the cluster's PID namespace (its death ends every process in it). */
  readonly initPid: number;
  /** The host-side forwarder (api.sock and egress.sock). */
  readonly forwarderPid: number;
  readonly startedAt: string;
}
