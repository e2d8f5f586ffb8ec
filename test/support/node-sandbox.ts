// Runs a bundle the way the distroless images do, without a container engine: a fresh mount and PID
// namespace whose root is a tmpfs holding only the node binary and the shared libraries it links (no shell,
// no node_modules, no other program), the bundle alone in /app, everything read-only but the given volumes,
// then chroot to uid:gid 65532 with no_new_privs, a clean environment and node as PID 1.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { shellQuote as quote } from '../../devkit/pod-runner/container-script.ts';
import { startProcess, type ManagedProcess } from '../../devkit/process.ts';

/** The distroless `nonroot` user and group. */
export const NONROOT = 65532;
const NODE = realpathSync(join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'node'));

/** A host directory bound into the sandbox, or a fresh tmpfs (an emptyDir with medium Memory). */
export type SandboxVolume =
  | { readonly hostPath: string; readonly mountPath: string; readonly readOnly: boolean }
  | { readonly tmpfsSize: string; readonly mountPath: string };

export interface SandboxSpec {
  /** Host path of the bundle; it is the only file in /app. */
  readonly bundle: string;
  /** A split bundle's folder (holding `bundle` and its chunks), bound as /app instead. */
  readonly bundleDir?: string;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly volumes?: readonly SandboxVolume[];
}

/** The shared libraries the dynamic loader resolves for a binary (ldd), the loader itself included. */
export function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  return [...out.matchAll(/(\/\S+\.so[.\d]*)/g)].map((m) => m[1]!);
}

/** Shell lines binding a host file onto `target` below `root` (its mount point created first). */
export function bindFile(root: string, source: string, target: string): string[] {
  return [
    `mkdir -p ${quote(root + dirname(target))}`,
    `touch ${quote(root + target)}`,
    `mount --bind ${quote(source)} ${quote(root + target)}`,
  ];
}

function script(root: string, spec: SandboxSpec): string {
  const appBundle = `/app/${spec.bundle.split('/').at(-1)!}`;
  const lines = [
    'set -eu',
    `mount -t tmpfs -o size=16m,mode=0755 sandbox-root ${quote(root)}`,
    ...bindFile(root, NODE, '/usr/bin/node'),
    ...sharedLibraries(NODE).flatMap((lib) => bindFile(root, lib, lib)),
    ...['null', 'zero', 'random', 'urandom'].flatMap((dev) => bindFile(root, `/dev/${dev}`, `/dev/${dev}`)),
    ...(spec.bundleDir === undefined
      ? bindFile(root, spec.bundle, appBundle)
      : [`mkdir -p ${quote(`${root}/app`)}`, `mount --bind ${quote(spec.bundleDir)} ${quote(`${root}/app`)}`]),
    `mkdir -p ${quote(`${root}/etc`)} ${quote(`${root}/proc`)} ${quote(`${root}/tmp`)}`,
    // What distroless ships in /etc for its users, plus the kubelet-managed hosts file.
    `printf 'root:x:0:0:root:/root:/sbin/nologin\\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin\\n' > ${quote(`${root}/etc/passwd`)}`,
    `printf 'root:x:0:\\nnonroot:x:${NONROOT}:\\n' > ${quote(`${root}/etc/group`)}`,
    `printf '127.0.0.1 localhost\\n::1 localhost\\n' > ${quote(`${root}/etc/hosts`)}`,
    `mount -t proc proc ${quote(`${root}/proc`)}`,
  ];
  for (const v of spec.volumes ?? []) {
    const target = quote(root + v.mountPath);
    lines.push(`mkdir -p ${target}`);
    if ('tmpfsSize' in v) lines.push(`mount -t tmpfs -o size=${v.tmpfsSize},mode=0777 sandbox-volume ${target}`);
    else
      lines.push(
        `mount --bind ${quote(v.hostPath)} ${target}`,
        ...(v.readOnly ? [`mount -o remount,ro,bind ${target}`] : []),
      );
  }
  const env = Object.entries(spec.env ?? {}).map(([k, v]) => quote(`${k}=${v}`));
  lines.push(
    `mount -o remount,ro,bind ${quote(root)}`,
    `exec /usr/bin/env -i ${env.join(' ')} /usr/bin/setpriv --no-new-privs /usr/sbin/chroot --userspec=${NONROOT}:${NONROOT} --groups=${NONROOT} ${quote(root)} /usr/bin/node ${[appBundle, ...(spec.args ?? [])].map(quote).join(' ')}`,
  );
  return `${lines.join('\n')}\n`;
}

export interface SandboxProcess extends ManagedProcess {
  /** The host PID of node (PID 1 inside the sandbox), for signals: the unshare parent does not forward them. */
  nodePid(): number;
  /** The host path of a path inside the sandbox (through /proc/<pid>/root), e.g. to read a tmpfs volume. */
  hostPath(sandboxPath: string): string;
}

/** Starts the bundle in the sandbox; stop() signals node itself, then the sandbox is gone with it. */
export function startInSandbox(spec: SandboxSpec): SandboxProcess {
  const work = mkdtempSync(join(tmpdir(), 'sidekey-sandbox-'));
  const root = join(work, 'root');
  return startNamespaced(work, `mkdir -p ${quote(root)}\n${script(root, spec)}`);
}

/**
 * Runs a setup script as PID 1 of fresh mount and PID namespaces (plus those `unshareFlags` add, e.g. --net);
 * the script ends by exec'ing the program, which so becomes PID 1. `work` holds the script and is removed
 * when the program exits.
 */
export function startNamespaced(work: string, setup: string, unshareFlags: readonly string[] = []): SandboxProcess {
  const file = join(work, 'sandbox.sh');
  writeFileSync(file, setup);
  const proc = startProcess('unshare', [
    '--mount',
    '--pid',
    ...unshareFlags,
    '--fork',
    '--kill-child',
    '--propagation',
    'private',
    '/bin/sh',
    file,
  ]);
  // unshare's child execs its way to the program (sh, env, setpriv, chroot or nsenter), so its pid is the program's.
  let programPid: number | undefined;
  const nodePid = (): number => {
    if (programPid !== undefined) return programPid;
    const children = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim();
    const pid = Number(children.split(' ')[0]);
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`the sandbox has no process yet:\n${proc.output()}`);
    programPid = pid;
    return pid;
  };
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(nodePid(), name);
    } catch {
      // not started yet, or already gone
    }
  };
  // Switching to the program's user clears the parent-death signal of unshare --kill-child, so the program would
  // outlive a test process that dies first: kill it then (as PID 1, the whole namespace goes with it).
  const kill = (): void => {
    signal('SIGKILL');
  };
  process.prependListener('exit', kill);
  const exitedWithin = (ms: number): Promise<boolean> =>
    Promise.race([
      proc.exited().then(() => true),
      new Promise<boolean>((r) => {
        setTimeout(() => {
          r(false);
        }, ms).unref();
      }),
    ]);
  void proc.exited().then(() => {
    process.removeListener('exit', kill);
    rmSync(work, { recursive: true, force: true });
  });
  return {
    ...proc,
    nodePid,
    hostPath: (sandboxPath) => `/proc/${nodePid()}/root${sandboxPath}`,
    async stop(graceMs = 5000): Promise<void> {
      signal('SIGTERM');
      // PID 1 of a namespace ignores SIGTERM until it has a handler (a program stopped just after its start).
      if (!(await exitedWithin(graceMs))) signal('SIGKILL');
      await exitedWithin(graceMs);
      await proc.stop(0);
    },
  };
}

/** Runs the bundle in the sandbox to completion. */
export async function runInSandbox(spec: SandboxSpec): Promise<{ code: number | null; output: string }> {
  const proc = startInSandbox(spec);
  await proc.exited();
  return { code: proc.child.exitCode, output: proc.output() };
}
