// The pure part of the pod runner: reading a Pod spec the way a kubelet does (env with the downward API and
// $(VAR) expansion, user and groups, quantities, probes, the command line an image would run). Anything the
// runner does not implement is an error that names the field, never silently ignored.
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';

export type Pod = IPod;
export type Container = IContainer;

/** What a container image would bring: its ENTRYPOINT, CMD, ENV, WORKDIR, and host paths baked into it. */
export interface Image {
  readonly entrypoint: readonly string[];
  readonly cmd?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly workingDir?: string;
  /** Host directories visible read-only at the same path inside the container (the image's contents). */
  readonly binds?: readonly string[];
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface PodIdentity {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

/** A downward-API field of the pod. */
export function fieldValue(pod: Pod, identity: PodIdentity, fieldPath: string): string {
  const labelOrAnnotation = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (labelOrAnnotation !== null) {
    const [, kind, key] = labelOrAnnotation as unknown as [string, 'labels' | 'annotations', string];
    return pod.metadata?.[kind]?.[key] ?? '';
  }
  switch (fieldPath) {
    case 'metadata.name':
      return identity.name;
    case 'metadata.namespace':
      return identity.namespace;
    case 'metadata.uid':
      return identity.uid;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
    case 'spec.nodeName':
      return 'local-pod-runner';
    case 'status.podIP':
    case 'status.hostIP':
      return '127.0.0.1';
    default:
      throw new Error(`env fieldRef "${fieldPath}" is not supported by the pod runner`);
  }
}

/** Kubernetes' $(VAR) expansion: known names are replaced, $$ escapes, unknown references stay as they are. */
export function expand(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (name === undefined) return '$';
    return env[name] ?? match;
  });
}

function envValue(pod: Pod, identity: PodIdentity, v: IEnvVar, env: Readonly<Record<string, string>>): string {
  if (v.valueFrom === undefined) return expand(v.value ?? '', env);
  if (v.valueFrom.fieldRef !== undefined) return fieldValue(pod, identity, v.valueFrom.fieldRef.fieldPath);
  throw new Error(`env "${v.name}": only value and valueFrom.fieldRef are supported by the pod runner`);
}

/** The environment a container starts with: image ENV, then the spec's env in order (later wins). */
export function containerEnv(
  pod: Pod,
  identity: PodIdentity,
  container: Container,
  image: Image,
): Record<string, string> {
  if (container.envFrom !== undefined && container.envFrom.length > 0) {
    throw new Error(`container "${container.name}": envFrom is not supported by the pod runner`);
  }
  const env: Record<string, string> = { PATH: DEFAULT_PATH, HOME: '/', HOSTNAME: identity.name, ...image.env };
  for (const v of container.env ?? []) env[v.name] = envValue(pod, identity, v, env);
  return env;
}

/** The argv a runtime would exec: command replaces ENTRYPOINT (and drops CMD), args replace CMD. */
export function containerArgv(container: Container, image: Image, env: Readonly<Record<string, string>>): string[] {
  const entrypoint = container.command ?? image.entrypoint;
  const args = container.args ?? (container.command === undefined ? (image.cmd ?? []) : []);
  const argv = [...entrypoint, ...args].map((a) => expand(a, env));
  if (argv.length === 0) throw new Error(`container "${container.name}": no command (the image has no entrypoint)`);
  return argv;
}

export interface RunAs {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

/**
 * uid/gid from the container's securityContext, else the pod's, else the image default (root); fsGroup joins the
 * groups.
 */
export function containerUser(pod: Pod, container: Container): RunAs {
  const podContext = pod.spec?.securityContext;
  const context = container.securityContext;
  const uid = context?.runAsUser ?? podContext?.runAsUser ?? 0;
  const gid = context?.runAsGroup ?? podContext?.runAsGroup ?? 0;
  if ((context?.runAsNonRoot ?? podContext?.runAsNonRoot) === true && uid === 0) {
    throw new Error(
      `container "${container.name}": runAsNonRoot is set but the container would run as root (no runAsUser)`,
    );
  }
  const groups = [...(podContext?.supplementalGroups ?? [])];
  if (podContext?.fsGroup !== undefined) groups.push(podContext.fsGroup);
  return { uid, gid, groups: [...new Set(groups)] };
}

const QUANTITY = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/;
const FACTORS: Readonly<Record<string, number>> = {
  '': 1,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
};

/** A Kubernetes memory quantity in bytes (rounded up, as the kubelet sizes tmpfs). */
export function quantityBytes(quantity: string | number): number {
  const match = QUANTITY.exec(String(quantity));
  if (match === null) throw new Error(`"${String(quantity)}" is not a memory quantity`);
  const [, amount, suffix = ''] = match as unknown as [string, string, string | undefined];
  return Math.ceil(Number(amount) * (FACTORS[suffix] ?? 1));
}

export interface HttpProbe {
  readonly port: number;
  readonly path: string;
  readonly periodMs: number;
  readonly deadlineMs: number;
}

/** A container's startupProbe (httpGet only) with named ports resolved; undefined when it has none. */
export function startupProbe(container: Container): HttpProbe | undefined {
  const probe = container.startupProbe;
  if (probe === undefined) return undefined;
  const http = probe.httpGet;
  if (http === undefined)
    throw new Error(`container "${container.name}": only httpGet startup probes are supported by the pod runner`);
  const port =
    typeof http.port === 'number' ? http.port : container.ports?.find((p) => p.name === http.port)?.containerPort;
  if (port === undefined)
    throw new Error(`container "${container.name}": startupProbe names unknown port "${String(http.port)}"`);
  const periodMs = (probe.periodSeconds ?? 10) * 1000;
  const deadlineMs = (probe.initialDelaySeconds ?? 0) * 1000 + periodMs * (probe.failureThreshold ?? 3);
  return { port, path: http.path ?? '/', periodMs, deadlineMs };
}

/** Name, namespace and uid the API server would have given the pod (generateName gets a random suffix). */
export function podIdentity(pod: Pod, random: () => string): PodIdentity {
  const name =
    pod.metadata?.name ??
    (pod.metadata?.generateName === undefined ? undefined : pod.metadata.generateName + random().slice(0, 5));
  if (name === undefined) throw new Error('the pod has neither metadata.name nor metadata.generateName');
  return { name, namespace: pod.metadata?.namespace ?? 'default', uid: pod.metadata?.uid ?? random() };
}

export function isSidecar(container: Container): boolean {
  return container.restartPolicy === 'Always';
}
