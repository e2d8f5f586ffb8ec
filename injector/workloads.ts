// The pod inside a manifest: a Pod itself, or the pod template of a workload. `sidekey render` mutates it
// exactly as the webhook would mutate the pods the workload creates.
import { mutatePod } from './mutate.ts';
import type { MutateOptions, MutateResult } from './mutate.ts';
import { cloneJson } from './patch.ts';

/** Where each workload kind keeps its pod template. */
export const TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export type ManifestResult =
  | { readonly kind: 'other' }
  | {
      readonly kind: 'mutated';
      readonly manifest: unknown;
      readonly result: Extract<MutateResult, { kind: 'injected' }>;
    }
  | { readonly kind: 'unchanged' | 'denied'; readonly result: MutateResult };

/** `Kind/name` of a manifest, for messages. */
export function manifestName(manifest: unknown): string {
  if (!isObject(manifest)) return 'document';
  const meta = isObject(manifest['metadata']) ? manifest['metadata'] : {};
  const name =
    typeof meta['name'] === 'string'
      ? meta['name']
      : typeof meta['generateName'] === 'string'
        ? `${meta['generateName']}*`
        : '(unnamed)';
  return `${typeof manifest['kind'] === 'string' ? manifest['kind'] : 'Unknown'}/${name.slice(0, 253)}`;
}

/** Mutates the pod of a manifest; other kinds come back as `other`. The input is not modified. */
export function mutateManifest(manifest: unknown, options: MutateOptions): ManifestResult {
  if (!isObject(manifest) || typeof manifest['kind'] !== 'string') return { kind: 'other' };
  if (manifest['kind'] === 'Pod') {
    const result = mutatePod(manifest, options);
    if (result.kind === 'injected') return { kind: 'mutated', manifest: result.pod, result };
    return { kind: result.kind === 'denied' ? 'denied' : 'unchanged', result };
  }
  const copy = cloneJson(manifest);
  const found = findTemplate(copy, manifest['kind']);
  if (found === undefined) return { kind: 'other' };
  const { holder, key, template } = found;
  const result = mutatePod(templatePod(template), options);
  if (result.kind !== 'injected') return { kind: result.kind === 'denied' ? 'denied' : 'unchanged', result };
  holder[key] = { ...(isObject(template) ? template : {}), metadata: result.pod.metadata, spec: result.pod.spec };
  return { kind: 'mutated', manifest: copy, result };
}

/** Where a workload of `kind` holds its pod template: the object holding it, its key and the template itself. */
export interface FoundTemplate {
  readonly holder: JsonObject;
  readonly key: string;
  readonly template: unknown;
}

/** The pod template of a workload, or undefined for a kind without one or an object whose path breaks off. */
export function findTemplate(workload: unknown, kind: string): FoundTemplate | undefined {
  const path = Object.hasOwn(TEMPLATE_PATHS, kind) ? TEMPLATE_PATHS[kind] : undefined;
  if (path === undefined || !isObject(workload)) return undefined;
  let holder: JsonObject = workload;
  for (const key of path.slice(0, -1)) {
    const next = holder[key];
    if (!isObject(next)) return undefined;
    holder = next;
  }
  const key = path[path.length - 1] ?? 'template';
  return { holder, key, template: holder[key] };
}

/** The pod a template stands for, as mutatePod reads it (a template without metadata opts nothing in). */
export function templatePod(template: unknown): unknown {
  return isObject(template) ? { metadata: template['metadata'] ?? {}, spec: template['spec'] } : template;
}
