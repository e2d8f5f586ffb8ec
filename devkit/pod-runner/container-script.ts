// Builds the shell script that turns a fresh mount namespace into a container: a tmpfs root holding
// read-only binds of the host's /usr and /etc (the "image"), the project and the image's extra paths, a
// /proc of the container's PID namespace, the pod's volumes at their mountPaths (read-only where the spec
// says so), then chroot + setpriv (uid, gid, groups, no_new_privs, capability bounding set) + a clean env.
// Pure: the runner writes the result to a file and runs it with /bin/sh inside the namespaces.
import type { RunAs } from './pod-spec.ts';

export interface VolumeMount {
  /** Host path of the volume (inside the pod's mount namespace, e.g. a tmpfs the sandbox mounted). */
  readonly source: string;
  readonly mountPath: string;
  readonly readOnly: boolean;
}

export interface ContainerPlan {
  /** Empty directory that becomes the container's root (a tmpfs is mounted on it). */
  readonly root: string;
  /** Host directories bound read-only at the same path (project checkout, image contents). */
  readonly binds: readonly string[];
  /** Host top-level entries copied as symlinks (merged-/usr distributions: /bin -> usr/bin). */
  readonly links: Readonly<Record<string, string>>;
  readonly mounts: readonly VolumeMount[];
  readonly readOnlyRoot: boolean;
  readonly user: RunAs;
  readonly noNewPrivs: boolean;
  readonly dropAllCapabilities: boolean;
  readonly workingDir: string;
  readonly env: Readonly<Record<string, string>>;
  readonly argv: readonly string[];
}

/** Single-quotes a word for /bin/sh. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

const IMAGE_DIRS = ['/usr', '/etc'];

function bindReadOnly(source: string): string[] {
  const target = `"$R"${shellQuote(source)}`;
  return [`mkdir -p ${target}`, `mount --rbind ${shellQuote(source)} ${target}`, `mount -o remount,bind,ro ${target}`];
}

function volumeLines(mount: VolumeMount): string[] {
  const path = shellQuote(mount.mountPath);
  // mkdir and realpath run inside the new root so symlinks such as /var/run -> /run resolve there.
  const lines = [`chroot "$R" /usr/bin/mkdir -p ${path}`, `P="$R$(chroot "$R" /usr/bin/realpath -- ${path})"`];
  lines.push(`mount --bind ${shellQuote(mount.source)} "$P"`);
  if (mount.readOnly) lines.push('mount -o remount,bind,ro "$P"');
  return lines;
}

function execLine(plan: ContainerPlan): string {
  const { uid, gid, groups } = plan.user;
  const setpriv = ['/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${gid}`];
  setpriv.push(groups.length > 0 ? `--groups=${groups.join(',')}` : '--clear-groups');
  if (plan.noNewPrivs) setpriv.push('--no-new-privs');
  if (plan.dropAllCapabilities) setpriv.push('--bounding-set=-all', '--inh-caps=-all');
  // The container dies with its parent (the runner's nsenter/unshare), so a crashed test leaves nothing behind.
  setpriv.push('--pdeathsig=KILL', '--');
  const env = Object.entries(plan.env).map(([k, v]) => `${k}=${v}`);
  const words = [
    'exec',
    'chroot',
    '"$R"',
    ...[...setpriv, '/usr/bin/env', '-i', '-C', plan.workingDir, ...env, ...plan.argv].map(shellQuote),
  ];
  return words.join(' ');
}

export function containerScript(plan: ContainerPlan): string {
  const lines = ['set -eu', `R=${shellQuote(plan.root)}`, 'mount -t tmpfs -o mode=0755,size=64m rootfs "$R"'];
  for (const [name, target] of Object.entries(plan.links))
    lines.push(`ln -s ${shellQuote(target)} "$R"/${shellQuote(name)}`);
  for (const dir of [...IMAGE_DIRS, ...plan.binds]) lines.push(...bindReadOnly(dir));
  lines.push('mkdir -p "$R/dev" "$R/proc" "$R/sys" "$R/run" "$R/var/tmp" "$R/tmp"', 'chmod 1777 "$R/tmp" "$R/var/tmp"');
  lines.push('ln -s /run "$R/var/run"', 'mount --rbind /dev "$R/dev"', 'mount -t proc proc "$R/proc"');
  lines.push('mount --rbind /sys "$R/sys"', 'mount -o remount,bind,ro "$R/sys"');
  for (const mount of plan.mounts) lines.push(...volumeLines(mount));
  if (plan.readOnlyRoot) lines.push('mount -o remount,ro "$R"');
  lines.push(execLine(plan));
  return `${lines.join('\n')}\n`;
}
