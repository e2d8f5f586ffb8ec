// Where app containers see the files. Refuses paths that would shadow system directories, the
// service-account token or an existing mount; mounting inside another mount is legal but worth a warning.

/** Directories whose whole subtree belongs to the runtime or to Kubernetes-managed tokens. */
const FORBIDDEN_SUBTREES: readonly string[] = [
  '/proc',
  '/sys',
  '/dev',
  '/var/run/secrets/kubernetes.io',
  '/run/secrets/kubernetes.io',
  '/var/run/secrets/eks.amazonaws.com',
  '/var/run/secrets/pods.eks.amazonaws.com',
];
/** Directories that must stay as the image has them (shadowing them breaks the container). */
const SYSTEM_DIRS: readonly string[] = [
  '/bin',
  '/boot',
  '/etc',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/opt',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/tmp',
  '/usr',
  '/usr/bin',
  '/usr/lib',
  '/usr/local',
  '/usr/sbin',
  '/usr/share',
  '/var',
  '/var/lib',
  '/var/log',
  '/var/run',
  '/var/tmp',
  '/home',
  '/run/secrets',
  '/var/run/secrets',
  '/app',
];

/**
 * The path without trailing slashes; most paths have none, and then no regex runs (this is on every admission's path).
 */
export function trimSlashes(path: string): string {
  return path.endsWith('/') ? path.replace(/\/+$/, '') : path;
}

export function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/** What is wrong with the path on its own, or undefined. */
export function mountPathProblem(path: string): string | undefined {
  if (path.length > 1024 || !/^(\/[A-Za-z0-9_.@+-]+)+$/.test(path)) {
    return 'must be an absolute path of [A-Za-z0-9_.@+-] segments without a trailing "/"';
  }
  if (path.split('/').some((s) => s === '.' || s === '..')) return 'must not have "." or ".." segments';
  if (FORBIDDEN_SUBTREES.some((dir) => isWithin(path, dir) || isWithin(dir, path))) {
    return 'would cover /proc, /sys, /dev or a Kubernetes-managed token directory';
  }
  if (SYSTEM_DIRS.includes(path)) return 'would shadow a system directory of the image; use a directory of its own';
  return undefined;
}

export interface ExistingMount {
  readonly container: string;
  readonly mountPath: string;
}

export type MountCheck =
  { readonly ok: true; readonly nestedIn?: ExistingMount } | { readonly ok: false; readonly clash: ExistingMount };

/** Refuses a path equal to or above an existing mount; reports one it would sit inside. */
export function checkAgainstMounts(path: string, mounts: readonly ExistingMount[]): MountCheck {
  const clash = mounts.find((m) => isWithin(trimSlashes(m.mountPath), path));
  if (clash !== undefined) return { ok: false, clash };
  const nestedIn = mounts.find((m) => isWithin(path, trimSlashes(m.mountPath)));
  return nestedIn === undefined ? { ok: true } : { ok: true, nestedIn };
}
