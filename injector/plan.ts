// From a parsed annotation request and the pod to an injection plan: which containers get the files, who owns
// them, which identity and backends the agent uses, and the agent configuration. Every pod-dependent rule lives
// here; building the containers from the plan is mechanical (containers.ts).
import { AGENT_CONFIG_VERSION } from './agent-config.ts';
import type { AgentConfig, Mode } from './agent-config.ts';
import { MAX_TARGETS, annotationProblem } from './annotations.ts';
import type { AnnotationRequest } from './annotations.ts';
import { resolveBackends } from './backends.ts';
import type { Backends } from './backends.ts';
import {
  AGENT_CONTAINER,
  AGENT_PORT,
  AGENT_SECRETS_DIR,
  ANNOTATION_PREFIX,
  INIT_CONTAINER,
  SECRETS_VOLUME,
  STATE_VOLUME,
} from './constants.ts';
import { collectIdentity } from './identity.ts';
import type { PodIdentity } from './identity.ts';
import { checkAgainstMounts, mountPathProblem } from './mount-path.ts';
import { decideOwnership, effectiveUid } from './ownership.ts';
import type { Ownership } from './ownership.ts';
import type { Container, Pod } from './pod-shape.ts';
import { PROBLEM_CODES, quote } from './problems.ts';
import { proxiedInternalHosts } from './proxy.ts';
import type { BackendUrl } from './proxy.ts';
import type { Problem } from './problems.ts';
import { quantityValue, scaleQuantity } from './quantity.ts';
import { STOPPING_SIGNALS } from './reload.ts';
import type { ReloadRequest } from './reload.ts';
import { unreachable } from './unreachable.ts';
import type { InjectionSettings } from './settings.ts';
import { IDENTITY_WIRING, PROVIDER_RESERVED_VOLUMES } from './providers/index.ts';
import { defined } from './defined.ts';

export interface MutateOptions {
  readonly settings: InjectionSettings;
}

export interface InjectionPlan {
  readonly mode: Mode;
  readonly mountPath: string;
  readonly targets: readonly string[];
  /** The container whose main process gets the reload signal (it is given RELOAD_TARGET_ENV). */
  readonly signalTarget?: string;
  readonly ownership: Ownership;
  readonly identity: PodIdentity;
  readonly backends: Backends;
  readonly resources: { readonly cpu: string; readonly memory: string; readonly memoryLimit: string };
  readonly tmpfsSize: string;
  /** The agent's log level (env SIDEKEY_LOG_LEVEL), when the pod asks for one. */
  readonly logLevel?: string;
  /** The agent's configuration: role run in mode sidecar, role init in mode init-only. */
  readonly config: AgentConfig;
}

export type PlanResult =
  | { readonly ok: true; readonly plan: InjectionPlan; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly problems: readonly Problem[]; readonly warnings: readonly string[] };

const RESERVED_CONTAINERS: readonly string[] = [AGENT_CONTAINER, INIT_CONTAINER];
const RESERVED_VOLUMES: readonly string[] = [SECRETS_VOLUME, STATE_VOLUME, ...PROVIDER_RESERVED_VOLUMES];
const MIN_AGENT_MEMORY = 32 * 1024 * 1024;
const MAX_LISTED = 8;

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, MAX_LISTED).map((n) => quote(n, 63));
  return names.length > MAX_LISTED ? `${shown.join(', ')}, …` : shown.join(', ');
}

function problem(code: Problem['code'], annotation: string | undefined, message: string): Problem {
  return annotation === undefined ? { code, message } : annotationProblem(code, annotation, message);
}

class Collector {
  readonly problems: Problem[] = [];
  readonly warnings: string[] = [];
}

export function planInjection(pod: Pod, request: AnnotationRequest, options: MutateOptions): PlanResult {
  const { settings } = options;
  const out = new Collector();
  checkReservedNames(pod, out);
  checkHostNamespaces(pod, request, out);
  const mode = chooseMode(request, options, out);
  const targets = chooseTargets(pod, request, out);
  const mountPath = request.mountPath ?? settings.mountPath;
  checkMountPath(mountPath, targets, request.mountPath === undefined ? undefined : 'mount-path', out);
  const signalTarget = chooseSignalTarget(pod, request, targets, out);
  const ownership = decideOwnership({
    spec: pod.spec,
    targets,
    ...defined({ signalTarget }),
    ...defined({ fileMode: request.fileMode }),
  });
  out.warnings.push(...ownership.warnings);
  const appContainers = [...targets, ...pod.spec.containers, ...(pod.spec.initContainers ?? [])];
  const identity = collectIdentity(appContainers, IDENTITY_WIRING);
  const backends = resolveBackends({
    request,
    identity,
    settings,
    noServiceAccountToken: pod.spec.automountServiceAccountToken === false,
  });
  out.problems.push(...backends.problems);
  out.warnings.push(...backends.warnings);
  out.warnings.push(...proxiedInternalHosts(backendUrls(backends, identity), settings.proxy));
  const resources = chooseResources(request, settings, out);
  if (out.problems.length > 0) return { ok: false, problems: out.problems, warnings: out.warnings };
  const config = buildConfig({ pod, request, mode, ownership, backends, signalTarget });
  return {
    ok: true,
    plan: {
      mode,
      mountPath,
      targets: targets.map((c) => c.name),
      ...(signalTarget === undefined ? {} : { signalTarget: signalTarget.name }),
      ownership,
      identity,
      backends,
      resources,
      tmpfsSize: request.tmpfsSize ?? settings.tmpfsSize,
      ...defined({ logLevel: request.logLevel }),
      config,
    },
    warnings: out.warnings,
  };
}

/**
 * The URLs the agent calls: the Vault address, and the AWS endpoints the app container points its SDK at (copied
 * to the agent with its identity env) when a file uses aws.
 */
function backendUrls(backends: Backends, identity: PodIdentity): BackendUrl[] {
  const vault =
    backends.config.vault === undefined ? [] : [{ what: "the Vault address's host", url: backends.config.vault.addr }];
  const aws =
    backends.config.aws === undefined
      ? []
      : identity.env.flatMap((e) =>
          e.name.startsWith('AWS_ENDPOINT_URL') && typeof e['value'] === 'string'
            ? [{ what: `the ${e.name} host`, url: e['value'] }]
            : [],
        );
  return [...vault, ...aws];
}

function checkReservedNames(pod: Pod, out: Collector): void {
  const containers = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].map((c) => c.name);
  for (const name of containers.filter((n) => RESERVED_CONTAINERS.includes(n))) {
    out.problems.push(
      problem(
        PROBLEM_CODES.reservedName,
        undefined,
        `a container is already named ${quote(name)}; that name is reserved for the injected agent`,
      ),
    );
  }
  for (const name of (pod.spec.volumes ?? []).map((v) => v.name).filter((n) => RESERVED_VOLUMES.includes(n))) {
    out.problems.push(
      problem(
        PROBLEM_CODES.reservedName,
        undefined,
        `a volume is already named ${quote(name)}; that name is reserved for the injected agent`,
      ),
    );
  }
}

/** Host namespaces the injection cannot live with: the API server or the scheduler would refuse the result. */
function checkHostNamespaces(pod: Pod, request: AnnotationRequest, out: Collector): void {
  if (pod.spec.hostNetwork === true) {
    out.problems.push(
      problem(
        PROBLEM_CODES.hostNamespace,
        undefined,
        "the pod sets hostNetwork: the agent's port would be a port of the node, so a second injected pod could not run on that node and the agent's /metrics would be open on the node's address; drop hostNetwork, or give this pod its secrets another way",
      ),
    );
  }
  if (pod.spec.hostPID === true && request.reload.kind === 'signal') {
    out.problems.push(
      problem(
        PROBLEM_CODES.hostNamespace,
        'reload',
        "a signal reload needs shareProcessNamespace, which the API server refuses together with the pod's hostPID: use reload http:<loopback URL>, or drop hostPID",
      ),
    );
  }
}

function chooseMode(request: AnnotationRequest, options: MutateOptions, out: Collector): Mode {
  const mode = request.mode ?? options.settings.defaultMode;
  if (
    mode === 'init-only' &&
    (request.refreshMs !== undefined || request.files.some((f) => f.refreshMs !== undefined))
  ) {
    out.warnings.push(`${ANNOTATION_PREFIX}refresh is ignored in mode init-only: the files are written once`);
  }
  if (mode === 'init-only' && request.reload.kind !== 'none') {
    out.warnings.push(`${ANNOTATION_PREFIX}reload is ignored in mode init-only: the files never change`);
  }
  return mode;
}

function chooseTargets(pod: Pod, request: AnnotationRequest, out: Collector): Container[] {
  if (request.containers === undefined) {
    if (pod.spec.containers.length <= MAX_TARGETS) return [...pod.spec.containers];
    out.problems.push(
      problem(
        PROBLEM_CODES.tooMany,
        undefined,
        `all ${pod.spec.containers.length} containers would get the mount, at most ${MAX_TARGETS} can: name the ones that read the secrets in ${ANNOTATION_PREFIX}containers`,
      ),
    );
    return [];
  }
  const all = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])];
  const byName = new Map(all.map((c) => [c.name, c]));
  const targets: Container[] = [];
  for (const name of request.containers) {
    const found = byName.get(name);
    if (found === undefined) {
      out.problems.push(
        problem(
          PROBLEM_CODES.unknownContainer,
          'containers',
          `the pod has no container ${quote(name, 63)} (it has ${listNames(all.map((c) => c.name))})`,
        ),
      );
    } else {
      targets.push(found);
    }
  }
  return targets;
}

function checkMountPath(
  mountPath: string,
  targets: readonly Container[],
  annotation: string | undefined,
  out: Collector,
): void {
  const bad = mountPathProblem(mountPath);
  if (bad !== undefined) {
    out.problems.push(
      problem(
        PROBLEM_CODES.badMountPath,
        annotation,
        `${annotation === undefined ? 'the configured mount path ' : ''}${bad}`,
      ),
    );
    return;
  }
  const mounts = targets.flatMap((c) =>
    (c.volumeMounts ?? []).map((m) => ({ container: c.name, mountPath: m.mountPath })),
  );
  const check = checkAgainstMounts(mountPath, mounts);
  if (!check.ok) {
    out.problems.push(
      problem(
        PROBLEM_CODES.mountConflict,
        annotation ?? 'mount-path',
        `would cover the existing mount ${quote(check.clash.mountPath, 80)} of container ${quote(check.clash.container, 63)}; choose a directory of its own`,
      ),
    );
  } else if (check.nestedIn !== undefined) {
    out.warnings.push(
      `the secrets are mounted inside ${check.nestedIn.mountPath.slice(0, 60)} of container ${check.nestedIn.container}`,
    );
  }
}

function chooseSignalTarget(
  pod: Pod,
  request: AnnotationRequest,
  targets: readonly Container[],
  out: Collector,
): Container | undefined {
  if (request.reload.kind !== 'signal') {
    if (request.reloadContainer !== undefined)
      out.warnings.push(`${ANNOTATION_PREFIX}reload-container is ignored without reload: signal:<SIG>`);
    return undefined;
  }
  const running = targets.filter((c) => pod.spec.containers.includes(c) || c.restartPolicy === 'Always');
  const name = request.reloadContainer ?? running[0]?.name;
  const target = running.find((c) => c.name === name);
  if (target === undefined) {
    const which =
      name === undefined
        ? 'no long-running container mounts the files'
        : `${quote(name, 63)} is not a long-running container that mounts the files`;
    out.problems.push(
      problem(
        PROBLEM_CODES.unknownContainer,
        'reload-container',
        `${which}; name one of ${listNames(running.map((c) => c.name))}`,
      ),
    );
    return undefined;
  }
  const uid = effectiveUid(pod.spec, target);
  if (uid === undefined || uid === 0) {
    const why = uid === 0 ? 'runs as root, and the agent may not' : 'has no runAsUser';
    out.problems.push(
      problem(
        PROBLEM_CODES.uidRequired,
        'reload',
        `a signal needs the agent to run as the app's UID (no capabilities under Pod Security restricted), but container ${quote(target.name, 63)} ${why}; set securityContext.runAsUser to its non-root UID, or use reload http:<loopback URL>`,
      ),
    );
    return undefined;
  }
  out.warnings.push(
    `reload ${request.reload.signal} shares the process namespace: containers see each other's processes, the app is not PID 1`,
  );
  if (STOPPING_SIGNALS.includes(request.reload.signal))
    out.warnings.push(`reload ${request.reload.signal} stops most processes; the kubelet then restarts the container`);
  return target;
}

function chooseResources(
  request: AnnotationRequest,
  settings: InjectionSettings,
  out: Collector,
): InjectionPlan['resources'] {
  const memory = request.agentMemory ?? settings.resources.memory;
  const tooSmall = (quantityValue(memory) ?? 0) < MIN_AGENT_MEMORY;
  if (tooSmall && request.agentMemory !== undefined) {
    out.problems.push(
      problem(
        PROBLEM_CODES.badQuantity,
        'agent-memory',
        `${quote(memory, 32)} is below 32Mi: the agent needs about 40 MiB and would be OOM-killed; request at least 32Mi (the limit is twice the request)`,
      ),
    );
  } else if (tooSmall) {
    out.warnings.push(
      `agent memory ${memory} (the webhook's resources.memory) is below 32Mi: the agent needs about 40 MiB and may be OOM-killed`,
    );
  }
  return { cpu: request.agentCpu ?? settings.resources.cpu, memory, memoryLimit: scaleQuantity(memory, 2) };
}

interface ConfigInput {
  readonly pod: Pod;
  readonly request: AnnotationRequest;
  readonly mode: Mode;
  readonly ownership: Ownership;
  readonly backends: Backends;
  readonly signalTarget: Container | undefined;
}

/** The first port from AGENT_PORT that no container declares (pods share one network namespace). */
export function choosePort(pod: Pod): number {
  const used = new Set(
    [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].flatMap((c) =>
      (c.ports ?? []).map((p) => p.containerPort),
    ),
  );
  let port = AGENT_PORT;
  while (used.has(port)) port += 1;
  return port;
}

/** init-only writes once and exits; sidecar keeps refreshing. */
function agentRole(mode: Mode): AgentConfig['role'] {
  switch (mode) {
    case 'sidecar':
      return 'run';
    case 'init-only':
      return 'init';
    default:
      return unreachable(mode, 'mode');
  }
}

/** The agent's reload: a signal goes to the chosen target's main process (none when the pod has no target). */
function agentReload(reload: ReloadRequest, signalTarget: Container | undefined): AgentConfig['reload'] {
  switch (reload.kind) {
    case 'none':
      return { kind: 'none' };
    case 'signal':
      return signalTarget === undefined
        ? { kind: 'none' }
        : { kind: 'signal', signal: reload.signal, container: signalTarget.name };
    case 'http':
      return { kind: 'http', url: reload.url };
    default:
      return unreachable(reload, 'reload kind');
  }
}

function buildConfig(input: ConfigInput): AgentConfig {
  const { request, ownership, backends } = input;
  return {
    version: AGENT_CONFIG_VERSION,
    mode: input.mode,
    role: agentRole(input.mode),
    secretsDir: AGENT_SECRETS_DIR,
    port: choosePort(input.pod),
    fileMode: ownership.fileMode,
    ...defined({ fileGroup: ownership.fileGroup }),
    files: request.files.map((f) => {
      const refreshMs = f.refreshMs ?? request.refreshMs;
      return {
        name: f.name,
        ref: { ...f.ref },
        ...defined({ format: f.format }),
        ...defined({ template: f.template }),
        ...defined({ refreshMs }),
      };
    }),
    reload: agentReload(request.reload, input.signalTarget),
    ...backends.config,
  };
}
