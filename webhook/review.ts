// AdmissionReview v1 in, AdmissionReview v1 (or a 4xx for a request that is not a review) out. Pure: the
// HTTP shell hands it the body text and sends back what it returns. It never throws for client input.
import { z } from 'zod';
import { mutatePod } from '../injector/mutate.ts';
import type { MutateOptions } from '../injector/mutate.ts';
import { ANNOTATION_PREFIX } from '../injector/constants.ts';
import { PROBLEM_CODES, formatProblem, printable, quote } from '../injector/problems.ts';
import type { Problem } from '../injector/problems.ts';
import { validator } from '../injector/schema-predicate.ts';
import { ALWAYS_EXCLUDED_NAMESPACES } from './config.ts';
import type { WebhookConfig } from './config.ts';
import { defined } from '../injector/defined.ts';

const API_VERSION = 'admission.k8s.io/v1';
const MAX_WARNING = 256;
const MAX_WARNINGS_TOTAL = 4096;
const MAX_MESSAGE = 8192;

const reviewSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('AdmissionReview'),
  request: z.object({
    uid: z.string().min(1).max(256),
    kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }),
    resource: z.object({ group: z.string(), version: z.string(), resource: z.string() }).optional(),
    subResource: z.string().optional(),
    name: z.string().optional(),
    namespace: z.string().optional(),
    operation: z.string(),
    object: z.unknown().optional(),
    oldObject: z.unknown().optional(),
    dryRun: z.boolean().optional(),
  }),
});
type Review = z.infer<typeof reviewSchema>;
export type ReviewRequest = Review['request'];
const validateReview = validator(reviewSchema);

export const RESULTS = ['injected', 'skipped', 'denied', 'invalid'] as const;
export type ReviewResult = (typeof RESULTS)[number];

export interface ReviewContext extends MutateOptions {
  /** Namespaces never injected (kube-system, kube-node-lease, the webhook's own and configured ones). */
  readonly excludedNamespaces: ReadonlySet<string>;
}

export interface ReviewOutcome<Result extends string = ReviewResult> {
  /** HTTP status: 200 with a review, or 400 for a request that is not a valid AdmissionReview v1. */
  readonly status: number;
  readonly body: unknown;
  readonly result: Result;
  /** Why: the skip reason, the problem codes of a denial, or what is wrong with the request. */
  readonly detail: string;
  readonly uid?: string;
  readonly namespace?: string;
  readonly dryRun?: boolean;
}

/** The review context of a configuration: its settings and every namespace never injected. */
export function reviewContext(config: Readonly<WebhookConfig>): ReviewContext {
  const excluded = new Set<string>([...ALWAYS_EXCLUDED_NAMESPACES, ...config.excludedNamespaces]);
  if (config.namespace !== undefined) excluded.add(config.namespace);
  return { settings: config, excludedNamespaces: excluded };
}

function invalid(detail: string): ReviewOutcome<'invalid'> {
  return { status: 400, body: { error: detail }, result: 'invalid', detail };
}

/**
 * JSON values (object members and array items) a review may hold; a realistic pod of 10 KB holds about 800, so
 * this is a pod of some 240 KB. Admission costs per value, not per byte: a review of the API server's 3 MiB can
 * hold 400,000 (empty annotations, labels or list items), which JSON.parse alone takes 100-500 ms over, so a
 * body past this is refused unparsed; one just under it costs at most about 36 ms of CPU, cold.
 */
export const MAX_JSON_VALUES = 20_000;

/** Whether `text` holds more than `max` of `:`, `,`, `[` and `{` (an upper bound of its values, strings included). */
function holdsMoreValues(text: string, max: number): boolean {
  let count = 0;
  for (const mark of [':', ',', '[', '{']) {
    for (let at = text.indexOf(mark); at !== -1; at = text.indexOf(mark, at + 1)) {
      count += 1;
      if (count > max) return true;
    }
  }
  return false;
}

/** Whether a review holds too many JSON values to be parsed at all (checked before JSON.parse). */
export function holdsTooManyValues(text: string): boolean {
  return holdsMoreValues(text, MAX_JSON_VALUES);
}

/**
 * The uid of a review, read without parsing: the API server writes kind, apiVersion, then request with its uid first.
 */
export function leadingUid(text: string): string | undefined {
  return /^\{(?:"(?:kind|apiVersion)":"[\w./]*",){0,2}"request":\{"uid":"([^"\\]{1,256})"/.exec(
    text.slice(0, 512),
  )?.[1];
}

/** A pod review too large to parse, refused with its uid when the API server's envelope gives it up front. */
function tooManyValues(text: string): ReviewOutcome {
  const message = `the pod holds more than ${MAX_JSON_VALUES} JSON values (fields and list items; a usual pod holds about 1,000), so the webhook does not read it: remove unused annotations, labels, env entries or containers`;
  const uid = leadingUid(text);
  if (uid === undefined) return invalid(`the body holds more than ${MAX_JSON_VALUES} JSON values`);
  const problem: Problem = { code: PROBLEM_CODES.tooMany, message };
  return { uid, dryRun: false, status: 200, result: 'denied', detail: problem.code, body: deny(uid, [problem], []) };
}

/** The request of an AdmissionReview body, or the 400 outcome of a body that is not one. */
export function parseReview(
  text: string,
):
  | { readonly ok: true; readonly request: ReviewRequest }
  | { readonly ok: false; readonly outcome: ReviewOutcome<'invalid'> } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, outcome: invalid('the body is not valid JSON') };
  }
  const issue = validateReview(raw);
  if (issue !== undefined) return { ok: false, outcome: invalid(`not an AdmissionReview ${API_VERSION}: ${issue}`) };
  // Valid, so only unknown keys tell it from what zod would return, and the deciders read none.
  return { ok: true, request: (raw as Review).request };
}

/** The outcome fields every answer to a request carries, for the log line. */
export function outcomeBase(request: ReviewRequest): { uid: string; namespace?: string; dryRun: boolean } {
  return { uid: request.uid, ...defined({ namespace: request.namespace }), dryRun: request.dryRun ?? false };
}

/** Handles one AdmissionReview request body. */
export function reviewAdmission(text: string, ctx: ReviewContext): ReviewOutcome {
  if (holdsTooManyValues(text)) return tooManyValues(text);
  const parsed = parseReview(text);
  return parsed.ok ? decide(parsed.request, ctx) : parsed.outcome;
}

function decide(request: ReviewRequest, ctx: ReviewContext): ReviewOutcome {
  const base = outcomeBase(request);
  const allow = (detail: string, warnings: readonly string[] = []): ReviewOutcome => ({
    ...base,
    status: 200,
    result: 'skipped',
    detail,
    body: respond(request.uid, { allowed: true, ...warningsField(warnings) }),
  });
  const isPod = request.kind.kind === 'Pod' && request.kind.group === '' && (request.subResource ?? '') === '';
  if (!isPod)
    return allow('not a pod', [`sidekey mutates pods only; check the webhook rules (got ${quote(request.kind.kind)})`]);
  if (request.operation !== 'CREATE') return allow(`operation ${quote(request.operation, 16)}`);
  if (request.namespace !== undefined && ctx.excludedNamespaces.has(request.namespace))
    return allow('excluded namespace');
  const result = mutatePod(request.object, ctx);
  switch (result.kind) {
    case 'skipped':
      return allow(result.reason);
    case 'denied':
      return {
        ...base,
        status: 200,
        result: 'denied',
        detail: result.problems.map((p) => p.code).join(','),
        body: deny(request.uid, result.problems, result.warnings),
      };
    case 'injected':
      return {
        ...base,
        status: 200,
        result: 'injected',
        detail: result.hash,
        body: respond(request.uid, {
          allowed: true,
          patchType: 'JSONPatch',
          patch: Buffer.from(JSON.stringify(result.patch)).toString('base64'),
          ...warningsField(result.warnings),
        }),
      };
  }
}

export function respond(uid: string, response: Record<string, unknown>): unknown {
  return { apiVersion: API_VERSION, kind: 'AdmissionReview', response: { uid, ...response } };
}

/** A refusal; `at` is the path of the pod in the object (a workload's pod template) for the causes' fields. */
export function deny(uid: string, problems: readonly Problem[], warnings: readonly string[], at = ''): unknown {
  const message = problems.map(formatProblem).join('\n');
  return respond(uid, {
    allowed: false,
    status: {
      status: 'Failure',
      code: 400,
      reason: 'BadRequest',
      message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message,
      details: {
        causes: problems.slice(0, 50).map((p) => ({
          reason: p.code,
          message: formatProblem(p).slice(0, 1024),
          field:
            at +
            (p.annotation === undefined
              ? 'spec'
              : `metadata.annotations[${printable(ANNOTATION_PREFIX + p.annotation)}]`),
        })),
      },
    },
    ...warningsField(warnings),
  });
}

/** Warnings as the API server wants them: short, and at most 4 KiB in total. */
export function warningsField(warnings: readonly string[]): { warnings?: string[] } {
  const out: string[] = [];
  let total = 0;
  for (const w of warnings) {
    const text = w.length > MAX_WARNING ? `${w.slice(0, MAX_WARNING - 1)}…` : w;
    if (total + text.length > MAX_WARNINGS_TOTAL) break;
    total += text.length;
    out.push(text);
  }
  return out.length === 0 ? {} : { warnings: out };
}
