// Installs what the real single-node Kubernetes of test/cluster/ runs, pinned and cached under .tools/cluster:
//   - kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kubectl from the Go module proxy
//     (k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces the k8s.io/* staging modules with local
//     folders, so test/cluster/go/kube is a main module that requires it and points those at their published
//     v0.x twins; one `go build` compiles the shared packages once);
//   - etcd (test/cluster/go/etcd: etcdmain.Main) and the pod sandbox's pause program (test/cluster/go/pause);
//   - containerd, runc and the CNI plugins from Debian (apt-get, as root).
// A stamp records a hash of the Go sources and flags: a second run costs nothing, a changed pin rebuilds.
// Cold: ~10 min of CPU on two cores and ~1.5 GB of Go module cache; warm Go caches: ~1-2 min.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const GO_SOURCES = join(ROOT, 'test', 'cluster', 'go');
export const CLUSTER_TOOLS = join(ROOT, '.tools', 'cluster');
export const CLUSTER_BIN = join(CLUSTER_TOOLS, 'bin');

/** The Kubernetes release the harness runs: the newest whose kubelet still runs on cgroup v1 with containerd 1.6. */
export const KUBERNETES_VERSION = 'v1.34.4';
/** Debian packages: the container runtime (CRI v1), the OCI runtime and the CNI plugins (in /usr/lib/cni). */
export const DEBIAN_PACKAGES = [
  'containerd',
  'runc',
  'containernetworking-plugins',
  'iproute2',
  'openssl',
  'util-linux',
] as const;
export const CNI_BIN_DIR = '/usr/lib/cni';

const KUBE_COMMANDS = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'kubectl'] as const;
/** Every binary the harness runs, by name, once installed. */
export const CLUSTER_BINARIES = [...KUBE_COMMANDS, 'etcd', 'pause'] as const;
export type ClusterBinary = (typeof CLUSTER_BINARIES)[number];

export function clusterBinary(name: ClusterBinary): string {
  return join(CLUSTER_BIN, name);
}

function log(message: string): void {
  process.stdout.write(`[setup] ${message}\n`);
}

/** Without the version stamped in, the apiserver reports v0.0.0 and clients (helm) refuse it. */
function kubeLdflags(): string {
  const [major = '', minor = ''] = KUBERNETES_VERSION.slice(1).split('.');
  const vars = {
    'k8s.io/component-base/version.gitVersion': KUBERNETES_VERSION,
    'k8s.io/component-base/version.gitMajor': major,
    'k8s.io/component-base/version.gitMinor': minor,
    'k8s.io/client-go/pkg/version.gitVersion': KUBERNETES_VERSION,
    'k8s.io/component-base/version.gitTreeState': 'clean',
  };
  return ['-s', '-w', ...Object.entries(vars).map(([k, v]) => `-X ${k}=${v}`)].join(' ');
}

interface GoBuild {
  readonly dir: string;
  readonly packages: readonly string[];
  readonly ldflags: string;
  readonly outputs: readonly ClusterBinary[];
}

const GO_BUILDS: readonly GoBuild[] = [
  {
    dir: 'kube',
    packages: KUBE_COMMANDS.map((c) => `k8s.io/kubernetes/cmd/${c}`),
    ldflags: kubeLdflags(),
    outputs: KUBE_COMMANDS,
  },
  { dir: 'etcd', packages: ['.'], ldflags: '-s -w', outputs: ['etcd'] },
  { dir: 'pause', packages: ['.'], ldflags: '-s -w', outputs: ['pause'] },
];

function sourceHash(build: GoBuild): string {
  const hash = createHash('sha256').update(JSON.stringify([build.packages, build.ldflags]));
  const dir = join(GO_SOURCES, build.dir);
  for (const file of readdirSync(dir).sort()) hash.update(file).update(readFileSync(join(dir, file)));
  return hash.digest('hex');
}

function goBuild(build: GoBuild): void {
  const stamp = join(CLUSTER_TOOLS, `.${build.dir}.stamp`);
  const want = sourceHash(build);
  const present = build.outputs.every((o) => existsSync(clusterBinary(o)));
  if (present && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return;
  log(`building ${build.outputs.join(', ')} from the Go module proxy (cold: minutes; cached afterwards)`);
  // A single output name makes -o a file; several make it a directory (which must then exist).
  const output = build.outputs.length === 1 ? clusterBinary(build.outputs[0] ?? 'pause') : `${CLUSTER_BIN}/`;
  execFileSync(
    'go',
    ['build', '-trimpath', '-mod=readonly', '-ldflags', build.ldflags, '-o', output, ...build.packages],
    {
      cwd: join(GO_SOURCES, build.dir),
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' },
    },
  );
  writeFileSync(stamp, want);
}

function debianPackagesMissing(): readonly string[] {
  const probes: Record<(typeof DEBIAN_PACKAGES)[number], string> = {
    containerd: '/usr/bin/containerd',
    runc: '/usr/sbin/runc',
    'containernetworking-plugins': join(CNI_BIN_DIR, 'bridge'),
    iproute2: '/usr/sbin/ip',
    openssl: '/usr/bin/openssl',
    'util-linux': '/usr/bin/nsenter',
  };
  return DEBIAN_PACKAGES.filter((p) => !existsSync(probes[p]));
}

function installDebianPackages(): void {
  const missing = debianPackagesMissing();
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `the cluster needs Debian packages ${missing.join(', ')}: run "apt-get install -y ${missing.join(' ')}" as root`,
    );
  }
  log(`installing ${missing.join(', ')} from Debian`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env,
  });
}

export function installClusterTools(): void {
  mkdirSync(CLUSTER_BIN, { recursive: true });
  installDebianPackages();
  for (const build of GO_BUILDS) goBuild(build);
}

if (import.meta.main) installClusterTools();
