// What the test cluster could leave on the host, read before `up` and after `down` so a test can assert that
// stopping leaves nothing: processes, mounts, cgroups, network namespaces and interfaces, and the paths the
// components write to by default (which supervisor.ts and configs.ts redirect into the state folder).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterLayout } from './layout.ts';

/** Default locations of containerd, its shims, runc, the CNI plugins and the kubelet. */
const DEFAULT_PATHS = [
  '/run/containerd',
  '/var/lib/containerd',
  '/var/lib/cni',
  '/var/lib/kubelet',
  '/var/log/pods',
  '/var/log/containers',
  '/opt/containerd',
  '/etc/cni',
  '/etc/kubernetes',
];

export interface HostFootprint {
  readonly processes: readonly string[];
  readonly mounts: readonly string[];
  readonly cgroups: readonly string[];
  readonly netns: readonly string[];
  readonly links: readonly string[];
  readonly defaultPaths: readonly string[];
  readonly stateDir: boolean;
}

/** This process and the ones that started it (a command line naming the state folder must not stop its own caller). */
function ownLineage(): Set<number> {
  const lineage = new Set<number>();
  for (let pid = process.pid; pid > 1 && !lineage.has(pid);) {
    lineage.add(pid);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }
  return lineage;
}

/** Processes (other than this one and its ancestors) whose command line mentions `text`, as "pid: command line". */
export function processesMentioning(text: string): string[] {
  const found: string[] = [];
  const lineage = ownLineage();
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(text) && !lineage.has(Number(pid))) found.push(`${pid}: ${cmdline.slice(0, 160)}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

export function hostFootprint(layout: ClusterLayout): HostFootprint {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const cgroupRoots = mounts
    .map((line) => line.split(' '))
    .filter((f) => f.includes('cgroup') || f.includes('cgroup2'))
    .map((f) => f[4] ?? '');
  return {
    processes: processesMentioning(layout.stateDir),
    mounts: mounts.filter((line) => line.includes(layout.stateDir) || line.includes(layout.netns)),
    cgroups: cgroupRoots.map((root) => join(root, layout.cgroupRoot)).filter((dir) => existsSync(dir)),
    netns: existsSync('/run/netns') ? readdirSync('/run/netns').filter((name) => name === layout.netns) : [],
    links: execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.split(':')[1]?.trim() ?? '')
      .filter((name) => name !== '')
      .sort(),
    defaultPaths: DEFAULT_PATHS.filter((path) => existsSync(path)),
    stateDir: existsSync(layout.stateDir),
  };
}
