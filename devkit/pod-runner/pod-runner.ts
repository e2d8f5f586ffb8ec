// The local pod runner: runs a (mutated) Pod on this machine the way a kubelet would, without images.
// Needs root on Linux (unshare, nsenter, mount, setpriv from util-linux; ip from iproute2).
//
//   sandbox   one process per pod (pause.ts) in a new mount + network namespace (+ PID namespace when
//             shareProcessNamespace), loopback up; each emptyDir is a directory, medium Memory a real tmpfs
//             of its sizeLimit (mode 0777, setgid to fsGroup like the kubelet). The mounts live only in the
//             pod's mount namespace: the host never sees them and they vanish with the pod.
//   container nsenter into the sandbox, a mount namespace of its own (+ a PID namespace of its own unless the
//             pod shares one), container-script.ts builds the root and execs the command as the spec's user.
//   lifecycle init containers in order; native sidecars (restartPolicy Always) started and gated on their
//             startupProbe; then app containers; when every app container has exited the sidecars get
//             SIGTERM (a Job completes). stop() ends a long-running pod the same way.
//   network   the pod has its own loopback (so every pod can use the agent's fixed port); request() reaches
//             a port inside the pod, and `services` ports on the host are reachable from inside the pod.
//
// Probes are polled every 100 ms (not periodSeconds) within the probe's own deadline: a faster kubelet.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { containerScript, shellQuote } from './container-script.ts';
import type { VolumeMount } from './container-script.ts';
import { connectThrough, serveUnixToTcp } from './forward.ts';
import {
  containerArgv,
  containerEnv,
  containerUser,
  fieldValue,
  isSidecar,
  podIdentity,
  quantityBytes,
  startupProbe,
} from './pod-spec.ts';
import type { Container, Image, Pod, PodIdentity } from './pod-spec.ts';
import { defined } from '../../injector/defined.ts';

export type { Image, Pod } from './pod-spec.ts';

export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..');
export const NODE_BIN = join(PROJECT_ROOT, 'node_modules', '.bin', 'node');
const LOG_LIMIT = 256 * 1024;

export interface RunPodOptions {
  /** The image → what it would run. Throw or return undefined for an image the test does not expect. */
  readonly images: (image: string) => Image | undefined;
  /** Host ports on 127.0.0.1 the pod may reach at the same port on its own loopback (test backends). */
  readonly services?: readonly number[];
  /** Called with each line a container writes (stdout and stderr). */
  readonly onLog?: (container: string, line: string) => void;
  /** Issues the token of a projected serviceAccountToken volume source (the kubelet's TokenRequest). */
  readonly serviceAccountToken?: (namespace: string, serviceAccount: string, audience: string | undefined) => string;
  /** Called when a container starts or exits, and when a startup probe passes (for progress output). */
  readonly onEvent?: (event: PodEvent) => void;
}

export interface PodEvent {
  readonly at: number;
  readonly container: string;
  readonly what: 'started' | 'startup-probe-passed' | 'exited';
  readonly exitCode?: number | null;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface RunningPod {
  readonly name: string;
  readonly namespace: string;
  readonly events: readonly PodEvent[];
  /** HTTP to 127.0.0.1:<port> inside the pod's network namespace. */
  request(port: number, path: string, init?: { method?: string; body?: string }): Promise<HttpAnswer>;
  /** The container's output so far (stdout and stderr interleaved, bounded). */
  logs(container: string): string;
  /** Every container's output, for scanning for leaked values. */
  allLogs(): string;
  /** Host PID of the container's main process, undefined when it is not running. */
  mainPid(container: string): number | undefined;
  /**
   * Runs a command in the container's mount and PID namespaces and root (what `kubectl exec` sees); its trimmed stdout.
   */
  exec(container: string, command: readonly string[]): string;
  /** Exit code of a container that has exited (null when killed by a signal). */
  exitCode(container: string): number | null | undefined;
  /** Resolves when every app container has exited and the sidecars were stopped; rejects after timeoutMs. */
  completion(timeoutMs: number): Promise<PodPhase>;
  /** SIGTERM app containers, then sidecars in reverse order, SIGKILL after the grace period; removes everything. */
  stop(): Promise<void>;
}

export class PodFailedError extends Error {
  readonly logs: string;
  constructor(message: string, logs: string) {
    super(`${message}\n--- container logs ---\n${logs}`);
    this.name = 'PodFailedError';
    this.logs = logs;
  }
}

interface RunningContainer {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined;
  log: string;
}

function hostLinks(): { links: Record<string, string>; dirs: string[] } {
  const links: Record<string, string> = {};
  const dirs: string[] = [];
  for (const name of ['bin', 'sbin', 'lib', 'lib32', 'lib64']) {
    try {
      if (lstatSync(`/${name}`).isSymbolicLink()) links[name] = readlinkSync(`/${name}`);
      else dirs.push(`/${name}`);
    } catch {
      // absent on this distribution
    }
  }
  return { links, dirs };
}

function childPid(parent: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(' ')[0];
    return first === undefined || first === '' ? undefined : Number(first);
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class PodRun implements RunningPod {
  readonly name: string;
  readonly namespace: string;
  readonly events: PodEvent[] = [];
  private readonly dir: string;
  private readonly containers = new Map<string, RunningContainer>();
  private sandbox: ChildProcess | undefined;
  private egress: Server | undefined;
  private currentPhase: PodPhase = 'Pending';
  private stopping: Promise<void> | undefined;
  private readonly appsDone: Promise<void>;
  private resolveAppsDone: () => void = () => undefined;

  private readonly pod: Pod;
  private readonly options: RunPodOptions;
  private readonly identity: PodIdentity;

  constructor(pod: Pod, options: RunPodOptions, identity: PodIdentity) {
    this.pod = pod;
    this.options = options;
    this.identity = identity;
    this.name = identity.name;
    this.namespace = identity.namespace;
    this.dir = mkdtempSync(join(tmpdir(), `sidekey-pod-${identity.name.slice(0, 40)}-`));
    this.appsDone = new Promise((r) => {
      this.resolveAppsDone = r;
    });
  }

  private get spec(): NonNullable<Pod['spec']> {
    const spec = this.pod.spec;
    if (spec === undefined) throw new Error('the pod has no spec');
    return spec;
  }

  private event(container: string, what: PodEvent['what'], exitCode?: number | null): void {
    const event: PodEvent = { at: Date.now(), container, what, ...defined({ exitCode }) };
    this.events.push(event);
    this.options.onEvent?.(event);
  }

  private volumeDir(name: string): string {
    return join(this.dir, 'volumes', name);
  }

  private sandboxScript(): string {
    const fsGroup = this.spec.securityContext?.fsGroup;
    const lines = ['set -eu', 'ip link set lo up'];
    for (const volume of this.spec.volumes ?? []) {
      const dir = shellQuote(this.volumeDir(volume.name));
      if (volume.emptyDir === undefined) continue;
      lines.push(`mkdir -p ${dir}`);
      if (volume.emptyDir.medium === 'Memory') {
        const size = volume.emptyDir.sizeLimit === undefined ? '' : `,size=${quantityBytes(volume.emptyDir.sizeLimit)}`;
        lines.push(`mount -t tmpfs -o mode=0777${size} ${shellQuote(`sidekey-${volume.name}`)} ${dir}`);
      }
      lines.push(`chmod 0777 ${dir}`);
      if (fsGroup !== undefined) lines.push(`chgrp ${fsGroup} ${dir}`, `chmod g+s ${dir}`);
    }
    const services = (this.options.services ?? []).map(String);
    lines.push(
      `exec ${[NODE_BIN, join(import.meta.dirname, 'pause.ts'), this.dir, ...services].map(shellQuote).join(' ')}`,
    );
    return lines.join('\n');
  }

  async startSandbox(): Promise<void> {
    mkdirSync(join(this.dir, 'volumes'), { recursive: true });
    this.projectVolumes();
    this.egress = await serveUnixToTcp(join(this.dir, 'egress.sock'), (port) =>
      (this.options.services ?? []).includes(port),
    );
    const pid = this.spec.shareProcessNamespace === true ? ['--pid', '--fork', '--kill-child=SIGKILL'] : [];
    const args = [
      '--pdeathsig=KILL',
      '--',
      'unshare',
      '--mount',
      '--net',
      ...pid,
      '--propagation',
      'private',
      '--',
      '/bin/sh',
      '-c',
      this.sandboxScript(),
    ];
    const child = spawn('setpriv', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    this.sandbox = child;
    let output = '';
    await new Promise<void>((resolveReady, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString('utf8');
        if (output.includes('ready\n')) resolveReady();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => {
        reject(new PodFailedError(`pod sandbox exited (code ${String(code)})`, output));
      });
      child.once('error', reject);
    });
  }

  /** Writes the files of projected volumes (service-account token, downward API) before the pod starts. */
  projectVolumes(): void {
    for (const volume of this.spec.volumes ?? []) {
      if (volume.projected === undefined) continue;
      const dir = this.volumeDir(volume.name);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      const mode = volume.projected.defaultMode ?? 0o644;
      const put = (path: string, content: string): void => {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        writeFileSync(join(dir, path), content, { mode });
      };
      for (const source of volume.projected.sources ?? []) {
        if (source.serviceAccountToken !== undefined) {
          const issue = this.options.serviceAccountToken;
          if (issue === undefined)
            throw new Error(
              `volume "${volume.name}": a serviceAccountToken source needs the runner's serviceAccountToken option`,
            );
          put(
            source.serviceAccountToken.path,
            issue(this.namespace, this.spec.serviceAccountName ?? 'default', source.serviceAccountToken.audience),
          );
        }
        for (const item of source.downwardAPI?.items ?? []) {
          if (item.fieldRef === undefined)
            throw new Error(`volume "${volume.name}": only downwardAPI fieldRef items are supported by the pod runner`);
          put(item.path, fieldValue(this.pod, this.identity, item.fieldRef.fieldPath));
        }
        if (source.configMap !== undefined || source.secret !== undefined)
          throw new Error(
            `volume "${volume.name}": projected configMap and secret sources are not supported by the pod runner`,
          );
      }
    }
  }

  private mounts(container: Container): VolumeMount[] {
    return (container.volumeMounts ?? []).map((m) => {
      const volume = this.spec.volumes?.find((v) => v.name === m.name);
      if (volume === undefined)
        throw new Error(`container "${container.name}": volumeMount "${m.name}" names no volume`);
      if (volume.emptyDir === undefined && volume.projected === undefined)
        throw new Error(`volume "${m.name}": only emptyDir and projected volumes are supported by the pod runner`);
      if (m.subPath !== undefined)
        throw new Error(`container "${container.name}": subPath is not supported by the pod runner`);
      return { source: this.volumeDir(m.name), mountPath: m.mountPath, readOnly: m.readOnly === true };
    });
  }

  private startContainer(container: Container): RunningContainer {
    const image = container.image === undefined ? undefined : this.options.images(container.image);
    if (image === undefined)
      throw new Error(`container "${container.name}": no mapping for image "${String(container.image)}"`);
    const env = containerEnv(this.pod, this.identity, container, image);
    const { links, dirs } = hostLinks();
    const context = container.securityContext;
    const root = join(this.dir, 'containers', container.name);
    mkdirSync(root, { recursive: true });
    const script = containerScript({
      root,
      binds: [...dirs, PROJECT_ROOT, ...(image.binds ?? [])],
      links,
      mounts: this.mounts(container),
      readOnlyRoot: context?.readOnlyRootFilesystem === true,
      user: containerUser(this.pod, container),
      noNewPrivs: context?.allowPrivilegeEscalation === false,
      dropAllCapabilities: context?.capabilities?.drop?.includes('ALL') === true,
      workingDir: container.workingDir ?? image.workingDir ?? '/',
      env,
      argv: containerArgv(container, image, env),
    });
    const scriptFile = join(this.dir, `${container.name}.sh`);
    writeFileSync(scriptFile, script);
    const shared = this.spec.shareProcessNamespace === true;
    // With a pod PID namespace the sandbox's unshare forked: its child (pause, PID 1 of the pod) is the
    // process that is inside all three namespaces; the unshare parent stays in the host's PID namespace.
    const sandboxPid = String(shared ? childPid(this.sandbox?.pid ?? -1) : this.sandbox?.pid);
    const enter = ['nsenter', '-t', sandboxPid, '--mount', '--net', ...(shared ? ['--pid'] : [])];
    const own = [
      'unshare',
      '--mount',
      ...(shared ? [] : ['--pid', '--fork', '--kill-child=SIGKILL']),
      '--propagation',
      'private',
    ];
    const child = spawn('setpriv', ['--pdeathsig=KILL', '--', ...enter, '--', ...own, '--', '/bin/sh', scriptFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '' },
    });
    const running: RunningContainer = {
      name: container.name,
      child,
      exitCode: undefined,
      log: '',
      exited: new Promise((resolveExit) => {
        child.once('exit', (code) => {
          running.exitCode = code;
          this.event(container.name, 'exited', code);
          resolveExit(code);
        });
      }),
    };
    let partial = '';
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      running.log = (running.log + text).slice(-LOG_LIMIT);
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.options.onLog?.(container.name, line);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    this.containers.set(container.name, running);
    this.event(container.name, 'started');
    return running;
  }

  private async awaitStartup(container: Container, running: RunningContainer): Promise<void> {
    const probe = startupProbe(container);
    if (probe === undefined) return;
    const deadline = Date.now() + probe.deadlineMs;
    while (Date.now() < deadline) {
      if (running.exitCode !== undefined)
        throw new PodFailedError(
          `sidecar "${container.name}" exited (code ${String(running.exitCode)}) before its startup probe passed`,
          this.allLogs(),
        );
      const answer = await this.request(probe.port, probe.path).catch(() => undefined);
      if (answer !== undefined && answer.status >= 200 && answer.status < 400) {
        this.event(container.name, 'startup-probe-passed');
        return;
      }
      await sleep(100);
    }
    throw new PodFailedError(
      `sidecar "${container.name}": startup probe ${probe.path} on port ${probe.port} did not pass within ${probe.deadlineMs} ms`,
      this.allLogs(),
    );
  }

  async startAll(): Promise<void> {
    for (const container of this.spec.initContainers ?? []) {
      const running = this.startContainer(container);
      if (isSidecar(container)) {
        await this.awaitStartup(container, running);
        continue;
      }
      const code = await running.exited;
      if (code !== 0)
        throw new PodFailedError(`init container "${container.name}" exited with code ${String(code)}`, this.allLogs());
    }
    const apps = this.spec.containers.map((c) => this.startContainer(c));
    this.currentPhase = 'Running';
    void Promise.all(apps.map((a) => a.exited)).then(async (codes) => {
      await this.stopSidecars();
      if (this.currentPhase === 'Running') this.currentPhase = codes.every((c) => c === 0) ? 'Succeeded' : 'Failed';
      this.resolveAppsDone();
    });
  }

  async request(port: number, path: string, init: { method?: string; body?: string } = {}): Promise<HttpAnswer> {
    const socket = join(this.dir, 'ingress.sock');
    return new Promise((resolveAnswer, reject) => {
      const req = httpRequest(
        {
          createConnection: () => connectThrough(socket, port),
          path,
          method: init.method ?? 'GET',
          headers: { host: `127.0.0.1:${port}`, connection: 'close' },
          timeout: 5000,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            resolveAnswer({ status: res.statusCode ?? 0, body });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request to pod port ${port} timed out`)));
      req.on('error', reject);
      req.end(init.body);
    });
  }

  logs(container: string): string {
    return this.containers.get(container)?.log ?? '';
  }

  allLogs(): string {
    return [...this.containers.values()].map((c) => `[${c.name}]\n${c.log}`).join('\n');
  }

  mainPid(container: string): number | undefined {
    const running = this.containers.get(container);
    if (running?.child.pid === undefined || running.exitCode !== undefined) return undefined;
    return childPid(running.child.pid);
  }

  exec(container: string, command: readonly string[]): string {
    const pid = this.mainPid(container);
    if (pid === undefined) throw new Error(`container "${container}" is not running`);
    return execFileSync('nsenter', ['-t', String(pid), '--mount', '--root', '--pid', '--', ...command], {
      encoding: 'utf8',
    }).trim();
  }

  exitCode(container: string): number | null | undefined {
    return this.containers.get(container)?.exitCode;
  }

  async completion(timeoutMs: number): Promise<PodPhase> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new PodFailedError(`pod ${this.name} did not complete within ${timeoutMs} ms`, this.allLogs()));
      }, timeoutMs);
    });
    try {
      await Promise.race([this.appsDone, timeout]);
      return this.currentPhase;
    } finally {
      clearTimeout(timer);
    }
  }

  private gracePeriodMs(): number {
    return Math.min(this.spec.terminationGracePeriodSeconds ?? 30, 30) * 1000;
  }

  private async terminate(names: readonly string[]): Promise<void> {
    await Promise.all(
      names.map(async (name) => {
        const running = this.containers.get(name);
        if (running === undefined || running.exitCode !== undefined) return;
        const pid = this.mainPid(name);
        if (pid !== undefined) process.kill(pid, 'SIGTERM');
        const timer = setTimeout(() => {
          const main = this.mainPid(name);
          if (main !== undefined) process.kill(main, 'SIGKILL');
          running.child.kill('SIGKILL');
        }, this.gracePeriodMs());
        await running.exited;
        clearTimeout(timer);
      }),
    );
  }

  private async stopSidecars(): Promise<void> {
    const sidecars = (this.spec.initContainers ?? [])
      .filter(isSidecar)
      .map((c) => c.name)
      .reverse();
    for (const name of sidecars) await this.terminate([name]);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.currentPhase === 'Running' || this.currentPhase === 'Pending') this.currentPhase = 'Succeeded';
      await this.terminate(this.spec.containers.map((c) => c.name));
      await this.stopSidecars();
      await this.terminate((this.spec.initContainers ?? []).map((c) => c.name));
      this.resolveAppsDone();
      const sandbox = this.sandbox;
      if (sandbox !== undefined && sandbox.exitCode === null && sandbox.signalCode === null) {
        const gone = new Promise((r) => sandbox.once('exit', r));
        sandbox.kill('SIGKILL');
        await gone;
      }
      this.egress?.close();
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.stopping;
  }

  fail(): void {
    this.currentPhase = 'Failed';
  }
}

/** Runs the pod; resolves once its app containers have started. On failure everything is cleaned up. */
export async function runPod(pod: Pod, options: RunPodOptions): Promise<RunningPod> {
  if (process.getuid?.() !== 0) throw new Error('the pod runner needs root (unshare, mount, setpriv)');
  const run = new PodRun(pod, options, podIdentity(pod, randomUUID));
  try {
    await run.startSandbox();
    await run.startAll();
    return run;
  } catch (error) {
    run.fail();
    await run.stop();
    throw error;
  }
}
