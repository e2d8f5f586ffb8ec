// The validating side: an AdmissionReview of a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob
// whose pod template opts in is answered with what pod admission would say of its pods (injector/
// template-check.ts): refused with the same message, or, in warn mode, allowed with the message as warnings.
// Pure like review.ts; the HTTP shell picks the action by path (the chart's workloadCheck.mode).
import { isDeepStrictEqual } from 'node:util';
import { checkTemplate, isCheckedWorkload } from '../injector/template-check.ts';
import { findTemplate } from '../injector/workloads.ts';
import { formatProblem, quote } from '../injector/problems.ts';
import {
  MAX_JSON_VALUES,
  deny,
  holdsTooManyValues,
  leadingUid,
  outcomeBase,
  parseReview,
  respond,
  warningsField,
} from './review.ts';
import type { ReviewContext, ReviewOutcome, ReviewRequest } from './review.ts';

/** What a template whose pods would be refused gets: a refusal, or warnings only. */
export const WORKLOAD_ACTIONS = ['refuse', 'warn'] as const;
export type WorkloadAction = (typeof WORKLOAD_ACTIONS)[number];

/** The path of each action (the ValidatingWebhookConfiguration's clientConfig.service.path). */
export const WORKLOAD_PATHS: Readonly<Record<WorkloadAction, string>> = { refuse: '/validate', warn: '/validate/warn' };

export const WORKLOAD_RESULTS = ['passed', 'skipped', 'denied', 'warned', 'invalid'] as const;
export type WorkloadResult = (typeof WORKLOAD_RESULTS)[number];

/** Handles one AdmissionReview body of a workload. */
export function reviewWorkload(
  text: string,
  ctx: ReviewContext,
  action: WorkloadAction,
): ReviewOutcome<WorkloadResult> {
  if (holdsTooManyValues(text)) return unchecked(text);
  const parsed = parseReview(text);
  return parsed.ok ? decide(parsed.request, ctx, action) : parsed.outcome;
}

/**
 * A workload too large to parse is let through unread with a warning: its pods are still checked, and refused
 * when they hold too many values, at creation by the mutating webhook; a refusal here would add nothing.
 */
function unchecked(text: string): ReviewOutcome<WorkloadResult> {
  const uid = leadingUid(text);
  const detail = `more than ${MAX_JSON_VALUES} JSON values`;
  if (uid === undefined) return { status: 400, body: { error: `the body holds ${detail}` }, result: 'invalid', detail };
  const warning = `sidekey did not check this workload: it holds ${detail}; its pods are checked when they are created`;
  return {
    uid,
    dryRun: false,
    status: 200,
    result: 'skipped',
    detail,
    body: respond(uid, { allowed: true, warnings: [warning] }),
  };
}

/** Why a request is not checked at all (a wrong kind, operation or namespace; an unchanged template), if it is not. */
function skipReason(
  request: ReviewRequest,
  ctx: ReviewContext,
): { readonly detail: string; readonly warning?: string } | undefined {
  const { group, kind } = request.kind;
  if (!isCheckedWorkload(group, kind) || (request.subResource ?? '') !== '') {
    return {
      detail: 'not a workload',
      warning: `sidekey checks the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs only; check the webhook rules (got ${quote(kind)})`,
    };
  }
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE')
    return { detail: `operation ${quote(request.operation, 16)}` };
  if (request.namespace !== undefined && ctx.excludedNamespaces.has(request.namespace))
    return { detail: 'excluded namespace' };
  // Controllers and the garbage collector update workloads made before this check existed (a ReplicaSet
  // scaled down, a finalizer added): only a new or changed template is checked, or they would be blocked.
  if (
    request.operation === 'UPDATE' &&
    isDeepStrictEqual(findTemplate(request.oldObject, kind)?.template, findTemplate(request.object, kind)?.template)
  ) {
    return { detail: 'template unchanged' };
  }
  return undefined;
}

function decide(request: ReviewRequest, ctx: ReviewContext, action: WorkloadAction): ReviewOutcome<WorkloadResult> {
  const base = outcomeBase(request);
  const answer = (
    result: WorkloadResult,
    detail: string,
    warnings: readonly string[] = [],
  ): ReviewOutcome<WorkloadResult> => ({
    ...base,
    status: 200,
    result,
    detail,
    body: respond(request.uid, { allowed: true, ...warningsField(warnings) }),
  });
  const skip = skipReason(request, ctx);
  if (skip !== undefined) return answer('skipped', skip.detail, skip.warning === undefined ? [] : [skip.warning]);
  const { kind } = request.kind;
  const check = checkTemplate(kind, request.object, ctx);
  switch (check.kind) {
    case 'skipped':
      return answer('skipped', check.reason);
    case 'passed':
      return answer('passed', 'passed', check.warnings);
    case 'denied': {
      const detail = check.problems.map((p) => p.code).join(',');
      if (action === 'refuse')
        return {
          ...base,
          status: 200,
          result: 'denied',
          detail,
          body: deny(request.uid, check.problems, check.warnings, check.at),
        };
      const refusal = `sidekey: the pods of this ${kind} will be refused at creation:`;
      return answer('warned', detail, [refusal, ...check.problems.map(formatProblem), ...check.warnings]);
    }
  }
}
