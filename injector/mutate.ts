// mutatePod(): pure, no I/O. Validates the pod's sidekey.io annotations, builds the injected pod (README.md,
// "How it works"; webhook/README.md, "Decisions worth knowing") and the minimal RFC 6902 patch (adds only;
// arrays are appended to or inserted into, never rewritten) that turns the input into it. Nothing is
// half-injected: any problem denies the whole pod.
import { hash as digest } from 'node:crypto';
import type { Operation } from 'rfc6902';
import type { AgentConfig } from './agent-config.ts';
import { parseAnnotations } from './annotations.ts';
import { AGENT_CONTAINER, ANNOTATION_PREFIX, CONFIG_ENV, INJECTED_LABEL, RELOAD_TARGET_ENV } from './constants.ts';
import { agentContainer, agentVolumes, appMount } from './containers.ts';
import { parseDuration } from './duration.ts';
import { planInjection } from './plan.ts';
import type { InjectionPlan, MutateOptions } from './plan.ts';
import { checkPodShape } from './pod-shape.ts';
import type { Container, Pod, PodSpec } from './pod-shape.ts';
import { PatchRecorder } from './patch.ts';
import { STATUS_PREFIX, claimsInjection, holds, withoutInjection } from './status.ts';
import type { JsonObject } from './patch.ts';
import { PROBLEM_CODES, quote } from './problems.ts';
import type { Problem } from './problems.ts';

export type { MutateOptions } from './plan.ts';

export const STATUS_ANNOTATION = `${ANNOTATION_PREFIX}status`;

export type MutateResult =
  | { readonly kind: 'skipped'; readonly reason: string }
  | { readonly kind: 'denied'; readonly problems: readonly Problem[]; readonly warnings: readonly string[] }
  | {
      readonly kind: 'injected';
      readonly pod: Pod;
      readonly patch: readonly Operation[];
      readonly warnings: readonly string[];
      /** The agent configuration of each added container, by container name. */
      readonly configs: Readonly<Record<string, AgentConfig>>;
      /** Hash of what was injected, also written to the status annotation. */
      readonly hash: string;
    };

/** Mutates a pod (the `object` of an AdmissionReview, or a workload's pod template with its metadata). */
export function mutatePod(input: unknown, options: MutateOptions): MutateResult {
  const shape = checkPodShape(input);
  if (!shape.ok)
    return { kind: 'denied', problems: [{ code: PROBLEM_CODES.notAPod, message: shape.problem }], warnings: [] };
  const status = shape.pod.metadata?.annotations?.[STATUS_ANNOTATION];
  if (status !== undefined && claimsInjection(status)) return verifyInjected(shape.pod, status, options);
  return mutateShaped(shape.pod, options);
}

/** A pod claiming an injection is accepted unchanged only when injecting it again gives the same result. */
function verifyInjected(pod: Pod, status: string, options: MutateOptions): MutateResult {
  const again = mutateShaped(withoutInjection(pod, STATUS_ANNOTATION), options);
  if (again.kind !== 'injected') return again;
  if (status === `${STATUS_PREFIX} ${again.hash}` && holds(pod.spec, again.pod.spec))
    return { kind: 'skipped', reason: 'already injected' };
  const problem: Problem = {
    code: PROBLEM_CODES.badStatus,
    annotation: 'status',
    message:
      `claims the injection ${quote(status.slice(STATUS_PREFIX.length).trim(), 64)}, but this webhook injects ${again.hash} for the pod's annotations, or the pod lacks part of it ` +
      '(set by hand, or annotations edited after injection): remove sidekey.io/status, the sidekey-agent and sidekey-init containers and the sidekey-* volumes, ' +
      'and submit the pod again (or render it afresh with `sidekey render`)',
  };
  return { kind: 'denied', problems: [problem], warnings: again.warnings };
}

function mutateShaped(pod: Pod, options: MutateOptions): MutateResult {
  const decision = parseAnnotations(pod.metadata?.annotations ?? {}, {
    minRefreshMs: parseDuration(options.settings.minRefresh) ?? 0,
  });
  if (decision.kind === 'skip') return { kind: 'skipped', reason: decision.reason };
  if (decision.problems.length > 0) return { kind: 'denied', problems: decision.problems, warnings: decision.warnings };
  const planned = planInjection(pod, decision.request, options);
  const warnings = [...decision.warnings, ...planned.warnings];
  if (!planned.ok) return { kind: 'denied', problems: planned.problems, warnings };
  const { plan } = planned;
  const mutated = copyForEdit(pod, plan);
  const patch = new PatchRecorder();
  const agent = inject(mutated, plan, options, patch);
  const oversized = oversizedConfig(agent);
  if (oversized !== undefined) return { kind: 'denied', problems: [oversized], warnings };
  const hash = specHash(plan, agent, options);
  patch.set(
    mutated.metadata?.annotations ?? {},
    ['metadata', 'annotations'],
    STATUS_ANNOTATION,
    `${STATUS_PREFIX} ${hash}`,
  );
  labelInjected(mutated, patch);
  return {
    kind: 'injected',
    pod: mutated,
    patch: patch.operations,
    warnings,
    configs: { [agent.name]: agent.config },
    hash,
  };
}

/** Adds `sidekey.io/injected: "true"`, creating the labels map when the pod has none. */
function labelInjected(pod: Pod, patch: PatchRecorder): void {
  const metadata = pod.metadata as JsonObject;
  const labels = pod.metadata?.labels;
  if (labels === undefined) patch.set(metadata, ['metadata'], 'labels', { [INJECTED_LABEL]: 'true' });
  else patch.assign(labels, ['metadata', 'labels'], INJECTED_LABEL, 'true');
}

/** Linux refuses to exec with one environment string over 128 KiB (MAX_ARG_STRLEN), so the agent would never start. */
const MAX_ENV_STRING_BYTES = 131_072;

function oversizedConfig({ configText }: AddedAgent): Problem | undefined {
  const bytes = Buffer.byteLength(`${CONFIG_ENV}=${configText}`) + 1;
  if (bytes <= MAX_ENV_STRING_BYTES) return undefined;
  return {
    code: PROBLEM_CODES.configTooLarge,
    message: `the agent configuration is ${Math.ceil(bytes / 1024)} KiB, over the 128 KiB an environment variable may hold`,
    example: 'shorten the sidekey.io/template-<name> annotations or use fewer files',
  };
}

/**
 * A copy of the pod in which everything the injection edits is new (the pod, metadata, annotations, spec,
 * the container and volume arrays and the containers that get a mount); untouched subtrees are shared with
 * the input, which is never modified. Much cheaper than a deep copy of a large pod.
 */
function copyForEdit(pod: Pod, plan: InjectionPlan): Pod {
  const edited = new Set([...plan.targets, ...(plan.signalTarget === undefined ? [] : [plan.signalTarget])]);
  const copyContainer = (c: Container): Container =>
    edited.has(c.name)
      ? {
          ...c,
          ...(c.volumeMounts === undefined ? {} : { volumeMounts: [...c.volumeMounts] }),
          ...(c.env === undefined ? {} : { env: [...c.env] }),
        }
      : c;
  const { spec } = pod;
  return {
    ...pod,
    metadata: {
      ...pod.metadata,
      annotations: { ...pod.metadata?.annotations },
      ...(pod.metadata?.labels === undefined ? {} : { labels: { ...pod.metadata.labels } }),
    },
    spec: {
      ...spec,
      containers: spec.containers.map(copyContainer),
      ...(spec.initContainers === undefined ? {} : { initContainers: spec.initContainers.map(copyContainer) }),
      ...(spec.volumes === undefined ? {} : { volumes: [...spec.volumes] }),
    },
  };
}

/**
 * The added agent container's configuration, and its JSON text (the env value; serialized once, it is also measured and
 * hashed).
 */
interface AddedAgent {
  readonly name: string;
  readonly config: AgentConfig;
  readonly configText: string;
}

/**
 * Applies the plan to `pod` in place, recording the patch; returns the added agent's config. The agent goes
 * first in initContainers, so the apps' own init containers can read the files: a native sidecar (mode
 * sidecar) or an init container that writes once and exits (mode init-only).
 */
function inject(pod: Pod, plan: InjectionPlan, options: MutateOptions, patch: PatchRecorder): AddedAgent {
  const spec = pod.spec as PodSpec & JsonObject;
  const targets = new Set(plan.targets);
  const lists = [
    ['containers', spec.containers],
    ['initContainers', spec.initContainers ?? []],
  ] as const;
  for (const [list, containers] of lists) {
    containers.forEach((container, index) => {
      const path = ['spec', list, index];
      if (targets.has(container.name)) patch.append(container, path, 'volumeMounts', [appMount(plan)]);
      if (container.name === plan.signalTarget && !(container.env ?? []).some((e) => e.name === RELOAD_TARGET_ENV)) {
        patch.append(container, path, 'env', [{ name: RELOAD_TARGET_ENV, value: container.name }]);
      }
    });
  }
  const agent: AddedAgent = { name: AGENT_CONTAINER, config: plan.config, configText: JSON.stringify(plan.config) };
  patch.prepend(spec, ['spec'], 'initContainers', [agentContainer({ ...agent, plan, settings: options.settings })]);
  patch.append(spec, ['spec'], 'volumes', agentVolumes(plan));
  if (plan.signalTarget !== undefined) patch.assign(spec, ['spec'], 'shareProcessNamespace', true);
  return agent;
}

/**
 * The SHA-256 of JSON.stringify([{agent name: config}, mountPath, targets, resources, tmpfsSize, image]), built
 * from the config text already made rather than serializing the config again (same text, same hash).
 */
function specHash(plan: InjectionPlan, agent: AddedAgent, options: MutateOptions): string {
  const configs = `${JSON.stringify(agent.name)}:${agent.configText}`;
  const rest = JSON.stringify([plan.mountPath, plan.targets, plan.resources, plan.tmpfsSize, options.settings.image]);
  return digest('sha256', `[{${configs}},${rest.slice(1)}`, 'hex').slice(0, 16);
}
