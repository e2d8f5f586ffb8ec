// Running what the image assembler wrote the way a container runtime and the kubelet do, without either:
// unpackImage reads the docker-archive (manifest, config, each layer checked against its diff ID and unpacked
// in order by GNU tar, as root, so owners and modes are the layer's); startContainer runs one container of a
// pod spec on it. Kubernetes' rules: `command` replaces the ENTRYPOINT, `args` the CMD (pod-spec.ts); env with
// the downward API; runAsUser/runAsGroup over the image's USER, fsGroup and supplementalGroups as groups; the
// volumes at their mountPaths; readOnlyRootFilesystem. The root is an overlay on the unpacked layers (as
// containerd's snapshotter makes it, so a run never changes them) in fresh mount and PID namespaces, with
// /proc, the /dev nodes node needs and a kubelet-style /etc/hosts; the program is PID 1, entered through
// nsenter's chroot and chdir as its user with no_new_privs and a clean environment (the image has no shell,
// so nothing can run inside it before the program).
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { shellQuote as quote } from '../../devkit/pod-runner/container-script.ts';
import {
  containerArgv,
  containerEnv,
  quantityBytes,
  startupProbe,
  type Container,
  type Pod,
  type RunAs,
} from '../../devkit/pod-runner/pod-spec.ts';
import { bindFile, startNamespaced, type SandboxProcess } from '../support/node-sandbox.ts';
import type { ImageConfig } from './images.ts';
import { defined } from '../../injector/defined.ts';

const run = promisify(execFile);

export interface UnpackedImage {
  /** The layers unpacked in order: the container's root filesystem. */
  readonly rootfs: string;
  readonly config: ImageConfig;
  readonly repoTags: readonly string[];
  /** How many layer tars the archive holds. */
  readonly layers: number;
}

interface ArchiveManifest {
  readonly Config: string;
  readonly RepoTags: readonly string[];
  readonly Layers: readonly string[];
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Unpacks a docker-archive into dir/rootfs (dir must exist); throws if a layer does not match its diff ID. */
export function unpackImage(archive: string, dir: string): UnpackedImage {
  const raw = join(dir, 'archive');
  const rootfs = join(dir, 'rootfs');
  mkdirSync(raw);
  mkdirSync(rootfs);
  // The image holds no entry for / itself; a runtime's root directory is 0755, so any user can enter it.
  chmodSync(rootfs, 0o755);
  execFileSync('tar', ['-xf', archive, '-C', raw]);
  const manifests = JSON.parse(readFileSync(join(raw, 'manifest.json'), 'utf8')) as readonly ArchiveManifest[];
  if (manifests.length !== 1) throw new Error(`${archive}: ${manifests.length} images in manifest.json, expected one`);
  const [manifest] = manifests as [ArchiveManifest];
  const image = JSON.parse(readFileSync(join(raw, manifest.Config), 'utf8')) as {
    config: ImageConfig;
    rootfs: { diff_ids: readonly string[] };
  };
  manifest.Layers.forEach((layer, i) => {
    const digest = `sha256:${sha256(join(raw, layer))}`;
    if (digest !== image.rootfs.diff_ids[i])
      throw new Error(`${archive}: layer ${layer} is ${digest}, the config says ${String(image.rootfs.diff_ids[i])}`);
    execFileSync('tar', [
      '-xf',
      join(raw, layer),
      '-C',
      rootfs,
      '--numeric-owner',
      '--same-owner',
      '--same-permissions',
    ]);
  });
  if (image.rootfs.diff_ids.length !== manifest.Layers.length)
    throw new Error(
      `${archive}: the config lists ${image.rootfs.diff_ids.length} layers, the manifest ${manifest.Layers.length}`,
    );
  rmSync(raw, { recursive: true, force: true });
  return { rootfs, config: image.config, repoTags: manifest.RepoTags, layers: manifest.Layers.length };
}

export interface ContainerSpec {
  readonly image: UnpackedImage;
  /** The pod the container belongs to: its downward API, securityContext and volumes. */
  readonly pod: Pod;
  /** One of the pod's containers or init containers. */
  readonly container: Container;
  /**
   * Host folders of the pod's volumes, by name (see projectVolume); an emptyDir with medium Memory not given here is a
   * fresh tmpfs.
   */
  readonly volumes?: Readonly<Record<string, string>>;
  /** Host folders bound read-only beyond the spec: what the test's node provides (e.g. the agent's file store). */
  readonly binds?: readonly { readonly hostPath: string; readonly mountPath: string }[];
  /**
   * host: the container's ports are on the host's loopback, for the test to call; pod: a network namespace of its own.
   */
  readonly network: 'host' | 'pod';
}

export interface RunningContainer extends SandboxProcess {
  /** The command line Kubernetes' rules gave the container. */
  readonly argv: readonly string[];
  readonly user: RunAs;
  /** One try of the container's startup probe from its network namespace, as a kubelet makes it (HTTPS unverified). */
  startupProbePasses(): Promise<boolean>;
}

const numeric = (text: string | undefined): number | undefined =>
  text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;

/** The image USER as uid and gid: numbers, or a name and the primary group from the image's /etc/passwd. */
function imageUser(image: UnpackedImage): { uid: number; gid: number | undefined } {
  const [user = '', group] = (image.config.User ?? '').split(':');
  const passwd = join(image.rootfs, 'etc', 'passwd');
  const lines = existsSync(passwd)
    ? readFileSync(passwd, 'utf8')
        .split('\n')
        .map((l) => l.split(':'))
    : [];
  const entry = lines.find((f) => (numeric(user) === undefined ? f[0] === user : numeric(f[2]) === numeric(user)));
  if (user !== '' && numeric(user) === undefined && entry === undefined)
    throw new Error(`image USER ${user} is not in its /etc/passwd`);
  return { uid: numeric(user) ?? numeric(entry?.[2]) ?? 0, gid: numeric(group) ?? numeric(entry?.[3]) };
}

/** The securityContext's user and groups over the image's, and the kubelet's runAsNonRoot check. */
function runAs(spec: ContainerSpec): RunAs {
  const context = spec.container.securityContext;
  const podContext = spec.pod.spec?.securityContext;
  const image = imageUser(spec.image);
  const uid = context?.runAsUser ?? podContext?.runAsUser ?? image.uid;
  const gid = context?.runAsGroup ?? podContext?.runAsGroup ?? image.gid ?? 0;
  if ((context?.runAsNonRoot ?? podContext?.runAsNonRoot) === true && uid === 0)
    throw new Error(`container "${spec.container.name}": runAsNonRoot, but it would run as root`);
  const groups = [
    gid,
    ...(podContext?.supplementalGroups ?? []),
    ...(podContext?.fsGroup === undefined ? [] : [podContext.fsGroup]),
  ];
  return { uid, gid, groups: [...new Set(groups)] };
}

/** The kubelet's files for a configMap or secret volume: each key a file of defaultMode (0644), group fsGroup. */
export function projectVolume(
  volume: IVolume,
  objects: readonly { kind: string; metadata: { name: string }; data?: Record<string, string> }[],
  dir: string,
  fsGroup?: number,
): void {
  const source = volume.configMap ?? volume.secret;
  const kind = volume.configMap === undefined ? 'Secret' : 'ConfigMap';
  const name = volume.configMap?.name ?? volume.secret?.secretName;
  const object = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (source === undefined || object === undefined)
    throw new Error(`volume "${volume.name}": no ${kind} ${String(name)} to project`);
  mkdirSync(dir, { recursive: true });
  for (const [key, value] of Object.entries(object.data ?? {})) {
    const file = join(dir, key);
    writeFileSync(file, kind === 'Secret' ? Buffer.from(value, 'base64') : value);
    chmodSync(file, source.defaultMode ?? 0o644);
    chownSync(file, 0, fsGroup ?? 0);
  }
}

/** Shell lines mounting each of the container's volumeMounts (and the extra binds) below the root. */
function volumeLines(spec: ContainerSpec, root: string): string[] {
  const lines: string[] = [];
  const mount = (hostPath: string, mountPath: string, readOnly: boolean): void => {
    lines.push(`mkdir -p ${quote(root + mountPath)}`, `mount --bind ${quote(hostPath)} ${quote(root + mountPath)}`);
    if (readOnly) lines.push(`mount -o remount,ro,bind ${quote(root + mountPath)}`);
  };
  for (const m of spec.container.volumeMounts ?? []) {
    if (m.subPath !== undefined) throw new Error(`volumeMount ${m.name}: subPath is not supported by the image runner`);
    const volume = spec.pod.spec?.volumes?.find((v) => v.name === m.name);
    const hostPath = spec.volumes?.[m.name];
    if (hostPath === undefined && volume?.emptyDir?.medium === 'Memory') {
      const size = volume.emptyDir.sizeLimit === undefined ? '' : `,size=${quantityBytes(volume.emptyDir.sizeLimit)}`;
      lines.push(
        `mkdir -p ${quote(root + m.mountPath)}`,
        `mount -t tmpfs -o mode=0777${size} emptydir ${quote(root + m.mountPath)}`,
      );
      continue;
    }
    if (hostPath === undefined) throw new Error(`volumeMount ${m.name}: no host folder given for the volume`);
    mount(hostPath, m.mountPath, m.readOnly === true);
  }
  for (const b of spec.binds ?? []) mount(b.hostPath, b.mountPath, true);
  return lines;
}

/** Starts the container; stop() sends SIGTERM to its program (PID 1), then SIGKILL after the grace period. */
export function startContainer(spec: ContainerSpec): RunningContainer {
  const { image, pod, container } = spec;
  const imageEnv = Object.fromEntries(
    image.config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
  const identity = {
    name: pod.metadata?.name ?? 'pod',
    namespace: pod.metadata?.namespace ?? 'default',
    uid: pod.metadata?.uid ?? 'pod-uid',
  };
  const env = containerEnv(pod, identity, container, { entrypoint: image.config.Entrypoint ?? [], env: imageEnv });
  const argv = containerArgv(
    container,
    { entrypoint: image.config.Entrypoint ?? [], ...defined({ cmd: image.config.Cmd }) },
    env,
  );
  const user = runAs(spec);
  const workingDir = container.workingDir ?? image.config.WorkingDir ?? '/';
  const work = mkdtempSync(join(tmpdir(), 'sidekey-container-'));
  const root = join(work, 'root');
  writeFileSync(join(work, 'hosts'), `127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.0.1\t${identity.name}\n`);
  const lines = [
    'set -eu',
    ...(spec.network === 'pod' ? ['ip link set lo up'] : []),
    `mkdir -p ${quote(root)} ${quote(join(work, 'upper'))} ${quote(join(work, 'overlay-work'))}`,
    `mount -t overlay overlay -o ${quote(`lowerdir=${image.rootfs},upperdir=${join(work, 'upper')},workdir=${join(work, 'overlay-work')}`)} ${quote(root)}`,
    `mkdir -p ${quote(`${root}/proc`)} ${quote(root + workingDir)}`,
    `mount -t proc proc ${quote(`${root}/proc`)}`,
    ...['null', 'zero', 'random', 'urandom'].flatMap((dev) => bindFile(root, `/dev/${dev}`, `/dev/${dev}`)),
    ...bindFile(root, join(work, 'hosts'), '/etc/hosts'),
    ...volumeLines(spec, root),
    ...(container.securityContext?.readOnlyRootFilesystem === true ? [`mount -o remount,ro ${quote(root)}`] : []),
    // setpriv sets the groups while still root; nsenter chroots, enters the working directory, then drops to the uid.
    [
      'exec /usr/bin/env -i',
      ...Object.entries(env).map(([k, v]) => quote(`${k}=${v}`)),
      `/usr/bin/setpriv --regid=${user.gid} --groups=${user.groups.join(',')} --no-new-privs --`,
      `/usr/bin/nsenter --root=${quote(root)} --wd=${quote(root + workingDir)} --setuid=${user.uid} --`,
      ...argv.map(quote),
    ].join(' '),
  ];
  const proc = startNamespaced(work, `${lines.join('\n')}\n`, spec.network === 'pod' ? ['--net'] : []);
  return {
    ...proc,
    argv,
    user,
    async startupProbePasses(): Promise<boolean> {
      const probe = startupProbe(container);
      if (probe === undefined) throw new Error(`container "${container.name}" has no startup probe`);
      const scheme = (container.startupProbe?.httpGet?.scheme ?? 'HTTP').toLowerCase();
      const get = `const { get } = await import('node:${scheme}');
        get({ host: '127.0.0.1', port: ${probe.port}, path: ${JSON.stringify(probe.path)}, rejectUnauthorized: false, timeout: 1000 }, (r) => { process.stdout.write(String(r.statusCode)); r.resume(); })
          .on('error', () => process.stdout.write('0'));`;
      const { stdout } = await run('nsenter', [
        `--net=/proc/${proc.nodePid()}/ns/net`,
        '--',
        process.execPath,
        '--input-type=module',
        '-e',
        get,
      ]);
      const status = Number(stdout);
      return status >= 200 && status < 400;
    },
  };
}
