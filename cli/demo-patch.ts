// A readable summary of what the webhook injected: one line per patch operation, naming the container,
// volume or setting it adds, and the agent configuration it carries (paths and settings, never values).
import type { Operation } from 'rfc6902';
import { parseAgentConfig } from '../injector/agent-config.ts';
import type { AgentConfig } from '../injector/agent-config.ts';
import { CONFIG_ENV } from '../injector/constants.ts';
import { formatReference } from '../injector/reference.ts';
import { unreachable } from '../injector/unreachable.ts';

interface ContainerLike {
  name?: string;
  image?: string;
  restartPolicy?: string;
  env?: { name: string; value?: string }[];
  securityContext?: { runAsUser?: number; readOnlyRootFilesystem?: boolean };
  startupProbe?: { httpGet?: { path?: string; port?: number | string } };
}

interface PodLike {
  spec?: { containers?: ContainerLike[]; initContainers?: ContainerLike[] };
}

function containerName(pod: PodLike, list: string, index: string): string {
  const containers = list === 'initContainers' ? pod.spec?.initContainers : pod.spec?.containers;
  return containers?.[Number(index)]?.name ?? `${list}[${index}]`;
}

/** What an injected container is, by the list it is in and its restart policy. */
function containerKind(c: ContainerLike, list: string): string {
  if (list !== 'initContainers') return 'sidecar container';
  return c.restartPolicy === 'Always' ? 'native sidecar' : 'init container';
}

function describeReload(reload: AgentConfig['reload']): string {
  switch (reload.kind) {
    case 'none':
      return 'none';
    case 'signal':
      return `${reload.signal} to container ${reload.container}`;
    case 'http':
      return `POST ${reload.url}`;
    default:
      return unreachable(reload, 'reload kind');
  }
}

/** The agent configuration a container carries: its role and reload, and one line per file (paths, never values). */
function describeConfig(c: ContainerLike): string[] {
  const raw = c.env?.find((e) => e.name === CONFIG_ENV)?.value;
  const parsed = raw === undefined ? undefined : parseAgentConfig(raw);
  if (parsed?.ok !== true) return [];
  const config = parsed.value;
  return [
    `    ${CONFIG_ENV}: role ${config.role}, file mode 0${config.fileMode.toString(8)}, reload ${describeReload(config.reload)}`,
    ...config.files.map((f) => {
      const how = f.template === undefined ? (f.format ?? 'default format') : 'template';
      const every = f.refreshMs === undefined ? '' : `, refresh ${f.refreshMs / 1000}s`;
      return `      file ${f.name.padEnd(12)} <- ${formatReference(f.ref)} (${how}${every})`;
    }),
  ];
}

function describeAgent(c: ContainerLike, list: string): string[] {
  const probe = c.startupProbe?.httpGet;
  const startup =
    probe === undefined
      ? ''
      : `, startupProbe GET ${String(probe.path)} :${String(probe.port)} (passes after the first complete write)`;
  return [
    `+ ${containerKind(c, list)} ${String(c.name)}  image ${String(c.image)}`,
    `    runs as uid ${String(c.securityContext?.runAsUser ?? 'image default')}, read-only root filesystem: ${String(c.securityContext?.readOnlyRootFilesystem === true)}${startup}`,
    ...describeConfig(c),
  ];
}

const asList = <T>(value: unknown): T[] => (Array.isArray(value) ? value : [value]) as T[];

type Describer = (value: unknown, target: string) => string[];

/** By the patched field of a container (`/spec/<list>/<i>/<field>`). */
const CONTAINER_FIELDS: Readonly<Record<string, Describer>> = {
  volumeMounts: (value, target) =>
    asList<{ name?: string; mountPath?: string; readOnly?: boolean }>(value).map(
      (m) =>
        `+ container ${target}: mounts ${String(m.name)} at ${String(m.mountPath)}${m.readOnly === true ? ' (read-only)' : ''}`,
    ),
  env: (value, target) =>
    asList<{ name?: string; value?: string }>(value).map(
      (e) => `+ container ${target}: env ${String(e.name)}=${String(e.value)} (marks the process to signal)`,
    ),
};

function describeSpec(parts: readonly string[], value: unknown, pod: PodLike): string[] | undefined {
  const [list, index, field] = parts;
  if (list === 'volumes') {
    return asList<{ name?: string; emptyDir?: { medium?: string; sizeLimit?: string } }>(value).map(
      (v) =>
        `+ volume ${String(v.name)}: emptyDir medium ${v.emptyDir?.medium ?? 'disk'}, sizeLimit ${v.emptyDir?.sizeLimit ?? 'none'} (tmpfs: never on disk)`,
    );
  }
  if (list === 'shareProcessNamespace')
    return ["+ shareProcessNamespace: true (the agent can signal the app's main process)"];
  if (list !== 'initContainers' && list !== 'containers') return undefined;
  if (index === undefined || field === undefined)
    return asList<ContainerLike>(value).flatMap((c) => describeAgent(c, list));
  return CONTAINER_FIELDS[field]?.(value, containerName(pod, list, index));
}

function describeOperation(op: Operation & { value?: unknown }, pod: PodLike): string[] {
  const parts = op.path
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  const [top, ...rest] = parts;
  if (top === 'spec') return describeSpec(rest, op.value, pod) ?? [`+ ${op.op} ${op.path}`];
  if (top === 'metadata' && rest[0] === 'annotations') {
    const key = rest[1];
    if (key === undefined)
      return Object.entries((op.value ?? {}) as Record<string, unknown>).map(
        ([k, v]) => `+ annotation ${k}: ${String(v)}`,
      );
    return [`+ annotation ${key}: ${String(op.value)}`];
  }
  return [`+ ${op.op} ${op.path}`];
}

/** One readable line (or a few) per operation of the webhook's patch; `pod` is the patched pod. */
export function describePatch(patch: readonly Operation[], pod: unknown): string[] {
  return patch.flatMap((op) => describeOperation(op, pod as PodLike));
}
