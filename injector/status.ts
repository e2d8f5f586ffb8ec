// `sidekey.io/status: injected <hash>` on a pod that is being created: a manifest from `sidekey render`, a copy
// of an injected pod, or a value set by hand. It is not trusted: the pod is taken back to what it was before
// an injection, injected again, and accepted unchanged only when the status names that injection's hash and
// the pod holds everything it adds. Otherwise an app would start without secrets, or with an agent
// configuration that no longer matches the pod's annotations.
import { AGENT_CONTAINER, INIT_CONTAINER, RELOAD_TARGET_ENV, SECRETS_VOLUME } from './constants.ts';
import type { Container, Pod } from './pod-shape.ts';

export const STATUS_PREFIX = 'injected';
const AGENTS: readonly string[] = [AGENT_CONTAINER, INIT_CONTAINER];
/** Volumes named sidekey-* are Sidekey's (a pod's own are refused with SK_RESERVED_NAME). */
const VOLUME_PREFIX = 'sidekey-';

/** Whether a status value claims an injection (`injected` or `injected <hash>`). */
export function claimsInjection(status: string): boolean {
  return status === STATUS_PREFIX || status.startsWith(`${STATUS_PREFIX} `);
}

function withoutAdditions(container: Container): Container {
  const { volumeMounts, env } = container;
  return {
    ...container,
    ...(volumeMounts === undefined ? {} : { volumeMounts: volumeMounts.filter((m) => m.name !== SECRETS_VOLUME) }),
    ...(env === undefined ? {} : { env: env.filter((e) => e.name !== RELOAD_TARGET_ENV) }),
  };
}

/** The pod as it was before an injection: no status, agent containers, Sidekey volumes, mounts or reload env. */
export function withoutInjection(pod: Pod, statusAnnotation: string): Pod {
  const annotations = Object.fromEntries(
    Object.entries(pod.metadata?.annotations ?? {}).filter(([k]) => k !== statusAnnotation),
  );
  const { spec } = pod;
  const apps = (list: readonly Container[]): Container[] =>
    list.filter((c) => !AGENTS.includes(c.name)).map(withoutAdditions);
  return {
    ...pod,
    metadata: { ...pod.metadata, annotations },
    spec: {
      ...spec,
      containers: apps(spec.containers),
      ...(spec.initContainers === undefined ? {} : { initContainers: apps(spec.initContainers) }),
      ...(spec.volumes === undefined ? {} : { volumes: spec.volumes.filter((v) => !v.name.startsWith(VOLUME_PREFIX)) }),
    },
  };
}

/**
 * Every field of `expected` is in `actual` with the same value; arrays must have the same length and match
 * item by item. Extra fields in `actual` are allowed: the API server fills in defaults before admission.
 */
export function holds(actual: unknown, expected: unknown): boolean {
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => holds(actual[i], e));
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
    const a = actual as Readonly<Record<string, unknown>>;
    return Object.entries(expected).every(([k, v]) => holds(a[k], v));
  }
  return actual === expected;
}
