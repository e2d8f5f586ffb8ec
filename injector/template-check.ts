// A workload's pod template checked with pod admission's own rules (mutatePod), so that a Deployment, Job or
// CronJob whose pods would be refused is refused at `kubectl apply`, with the same messages, instead of in a
// ReplicaSet's or Job's events. What a template cannot know yet is left to pod admission: its namespace comes
// from the request, the API server adds the service-account token mount at pod creation (mutatePod already
// asks for neither), and a mutating webhook that runs before ours at pod creation (EKS IRSA, Pod Identity)
// may add AWS_REGION, so a missing region only warns here.
import { optsIn } from './annotations.ts';
import { ANNOTATION_PREFIX } from './constants.ts';
import { mutatePod } from './mutate.ts';
import type { MutateOptions } from './mutate.ts';
import { PROBLEM_CODES, formatProblem } from './problems.ts';
import type { Problem } from './problems.ts';
import { TEMPLATE_PATHS, findTemplate, isObject, templatePod } from './workloads.ts';

const INJECT_ANNOTATION = `${ANNOTATION_PREFIX}inject`;

/** The workload kinds whose template is checked, by API group (the validating webhook's rules). */
export const CHECKED_WORKLOADS: Readonly<Record<string, readonly string[]>> = {
  apps: ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'],
  batch: ['Job', 'CronJob'],
};

export function isCheckedWorkload(group: string, kind: string): boolean {
  return Object.hasOwn(CHECKED_WORKLOADS, group) && (CHECKED_WORKLOADS[group] ?? []).includes(kind);
}

export type TemplateCheck =
  | { readonly kind: 'skipped'; readonly reason: string }
  | { readonly kind: 'passed'; readonly warnings: readonly string[] }
  | {
      readonly kind: 'denied';
      readonly problems: readonly Problem[];
      readonly warnings: readonly string[];
      /** The template's path in the workload with a trailing dot (`spec.template.`), for the causes' fields. */
      readonly at: string;
    };

/** Whether a problem may be resolved by what is added to the pod at creation, after the template is written. */
function settledAtPodCreation(problem: Problem): boolean {
  return problem.code === PROBLEM_CODES.missingSetting && problem.annotation === 'aws-region';
}

/** Checks the pod template of a workload of `kind` (one of CHECKED_WORKLOADS) as pod admission checks its pods. */
export function checkTemplate(kind: string, workload: unknown, options: MutateOptions): TemplateCheck {
  const found = findTemplate(workload, kind);
  if (found === undefined || !isObject(found.template)) return { kind: 'skipped', reason: 'no pod template' };
  // Opt-in first: a template that does not opt in is never refused, whatever else is wrong with it.
  const metadata = found.template['metadata'];
  const annotations = isObject(metadata) && isObject(metadata['annotations']) ? metadata['annotations'] : {};
  const inject = annotations[INJECT_ANNOTATION];
  if (!optsIn(typeof inject === 'string' ? inject : undefined)) return { kind: 'skipped', reason: 'not opted in' };
  const result = mutatePod(templatePod(found.template), options);
  switch (result.kind) {
    case 'skipped':
      return { kind: 'skipped', reason: result.reason };
    case 'injected':
      return { kind: 'passed', warnings: result.warnings };
    case 'denied': {
      const later = result.problems.filter(settledAtPodCreation);
      const problems = result.problems.filter((p) => !settledAtPodCreation(p));
      const warnings = [
        ...later.map(
          (p) => `${formatProblem(p)} (the pods are refused unless a webhook adds AWS_REGION at their creation)`,
        ),
        ...result.warnings,
      ];
      if (problems.length === 0) return { kind: 'passed', warnings };
      return { kind: 'denied', problems, warnings, at: `${(TEMPLATE_PATHS[kind] ?? []).join('.')}.` };
    }
  }
}
