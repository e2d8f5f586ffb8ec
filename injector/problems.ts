// Admission problems: a stable code, the annotation (or pod part) at fault, what is wrong and a valid example.
// Messages never carry a value that could be secret: callers pass only bounded, quoted fragments.
import { ANNOTATION_PREFIX } from './constants.ts';

export const PROBLEM_CODES = {
  notAPod: 'SK_NOT_A_POD',
  badInject: 'SK_BAD_INJECT',
  badStatus: 'SK_BAD_STATUS',
  unknownAnnotation: 'SK_UNKNOWN_ANNOTATION',
  noSecrets: 'SK_NO_SECRETS',
  badFileName: 'SK_BAD_FILE_NAME',
  duplicateFile: 'SK_DUPLICATE_FILE',
  orphan: 'SK_ORPHAN_ANNOTATION',
  badReference: 'SK_BAD_REFERENCE',
  badTemplate: 'SK_BAD_TEMPLATE',
  badFormat: 'SK_BAD_FORMAT',
  badDuration: 'SK_BAD_DURATION',
  badMode: 'SK_BAD_MODE',
  badLogLevel: 'SK_BAD_LOG_LEVEL',
  badReload: 'SK_BAD_RELOAD',
  unknownContainer: 'SK_UNKNOWN_CONTAINER',
  badMountPath: 'SK_BAD_MOUNT_PATH',
  mountConflict: 'SK_MOUNT_CONFLICT',
  badFileMode: 'SK_BAD_FILE_MODE',
  uidRequired: 'SK_UID_REQUIRED',
  badQuantity: 'SK_BAD_QUANTITY',
  badBackend: 'SK_BAD_BACKEND_SETTING',
  missingSetting: 'SK_MISSING_SETTING',
  reservedName: 'SK_RESERVED_NAME',
  configTooLarge: 'SK_CONFIG_TOO_LARGE',
  tooMany: 'SK_TOO_MANY',
  hostNamespace: 'SK_HOST_NAMESPACE',
} as const;
export type ProblemCode = (typeof PROBLEM_CODES)[keyof typeof PROBLEM_CODES];

export interface Problem {
  readonly code: ProblemCode;
  /** Annotation key without the prefix, or undefined for a problem with the pod itself. */
  readonly annotation?: string;
  readonly message: string;
  /** A valid `key: "value"` line (for an annotation) or a hint. */
  readonly example?: string;
}

/** `annotation "sidekey.io/secret-db": <message>; example: sidekey.io/secret-db: "aws:prod/db#password"` */
export function formatProblem(problem: Problem): string {
  const where =
    problem.annotation === undefined ? 'pod' : `annotation ${printable(ANNOTATION_PREFIX + problem.annotation)}`;
  const example = problem.example === undefined ? '' : `; example: ${problem.example}`;
  return `${where}: ${problem.message}${example}`;
}

/** An example line for an annotation: `sidekey.io/<key>: "<value>"`. */
export function example(key: string, value: string): string {
  return `${ANNOTATION_PREFIX}${key}: ${JSON.stringify(value)}`;
}

/** Characters of values that are safe to repeat in a message (no spaces, quotes, braces, "@" or "?"). */
const SAFE_VALUE = /^[A-Za-z0-9_.,:/+=-]*$/;

/**
 * A user value for a message about a non-secret setting (modes, signals, names). Only short values made of
 * safe characters are repeated; anything else (a template, a URL with credentials, free text) is described.
 */
export function quote(text: string, max = 40): string {
  return text.length <= max && SAFE_VALUE.test(text)
    ? JSON.stringify(text)
    : `(a value of ${text.length} characters, not shown)`;
}

/** An annotation key for a message: printable and capped (keys are names, never values). */
export function printable(text: string, max = 80): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(clean.length > max ? `${clean.slice(0, max)}…` : clean);
}
