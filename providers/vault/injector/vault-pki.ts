// Vault/OpenBao PKI certificates as the injector sees them: `vault:<mount>/issue/<role>?common_name=…[&alt_names=…]
// [&ip_sans=…][&ttl=…][#certificate|private_key|issuing_ca|ca_chain|serial_number]`. The parameters are checked
// here, at admission, so that a typo is refused with the fix instead of failing in the agent; and files of one role
// that ask with different parameters get different certificates, so each such certificate must bring its own key.
import { isIP } from 'node:net';
import { formatDuration, parseDuration } from '../../../injector/duration.ts';
import { ANNOTATION_PREFIX } from '../../../injector/constants.ts';
import { PROBLEM_CODES } from '../../../injector/problems.ts';
import type { FileRequest } from '../../../injector/annotations.ts';
import type { SecretReference } from '../../../injector/reference.ts';
import type { ProblemDraft } from '../../../injector/providers/declaration.ts';

/** `<mount>/issue/<role>`: the mount may be nested or follow a namespace; Vault role names. */
const ISSUE_PATH = /^(.+)\/issue\/([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/;
/** A DNS name (labels of letters, digits and hyphens), optionally a wildcard's `*.` first. */
const DNS_NAME =
  /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const MAX_NAMES = 100;
export const MIN_CERT_TTL_MS = 60_000;
export const MAX_CERT_TTL_MS = 366 * 24 * 3_600_000;

/** The fields of an issued certificate a file may select (the agent writes ca_chain as concatenated PEM). */
export const CERT_FIELDS = ['certificate', 'private_key', 'issuing_ca', 'ca_chain', 'serial_number'] as const;

const PARAMETERS: Readonly<Record<string, (value: string) => string | undefined>> = {
  common_name: (value) => (isDnsName(value) ? undefined : 'common_name must be a DNS name such as web.payments.svc'),
  alt_names: (value) => listProblem(value, 'alt_names', 'DNS names', isDnsName),
  ip_sans: (value) => listProblem(value, 'ip_sans', 'IP addresses', (ip) => isIP(ip) !== 0),
  ttl: ttlProblem,
};
/** The parameters an issue takes (the others Vault knows, such as uri_sans, are refused). */
export const ISSUE_PARAMETERS: readonly string[] = Object.keys(PARAMETERS);
export const ISSUE_EXAMPLE = 'vault:pki/issue/web?common_name=web.payments.svc&ttl=24h#certificate';

/** Whether a Vault path is a role's issue endpoint, the one write Sidekey makes. */
export function isIssuePath(path: string): boolean {
  return ISSUE_PATH.test(path);
}

function isDnsName(name: string): boolean {
  return name.length <= 253 && DNS_NAME.test(name);
}

function listProblem(value: string, key: string, what: string, valid: (item: string) => boolean): string | undefined {
  const items = value.split(',');
  if (items.length > MAX_NAMES) return `${key} lists more than ${MAX_NAMES} names`;
  const bad = items.findIndex((item) => !valid(item));
  return bad < 0 ? undefined : `${key} must be a comma list of ${what}; item ${bad + 1} is not one`;
}

function ttlProblem(value: string): string | undefined {
  const ms = parseDuration(value);
  if (ms === undefined) return 'ttl must be a Go-style duration such as 24h or 90m';
  if (ms < MIN_CERT_TTL_MS || ms > MAX_CERT_TTL_MS)
    return `ttl must be between ${formatDuration(MIN_CERT_TTL_MS)} and ${formatDuration(MAX_CERT_TTL_MS)} (the agent re-issues at about 2/3 of it)`;
  return undefined;
}

/** Why the `?parameters` of a vault: reference are refused, if they are (the declaration's `parameters` rule). */
export function issueProblem(ref: SecretReference, params: ReadonlyMap<string, string>): string | undefined {
  if (!isIssuePath(ref.path)) return '?parameters issue a certificate, so the path must be <mount>/issue/<role>';
  if (ref.version !== undefined) return 'a certificate has no @version: every issue makes a new one';
  if (ref.field !== undefined && !(CERT_FIELDS as readonly string[]).includes(ref.field))
    return `a certificate's #field is one of ${CERT_FIELDS.join(', ')}`;
  const unknown = [...params.keys()].filter((k) => PARAMETERS[k] === undefined);
  if (unknown.length > 0)
    return `unknown parameter ${unknown.map((k) => `"${k}"`).join(', ')} (allowed: ${ISSUE_PARAMETERS.join(', ')})`;
  if (!params.has('common_name')) return 'a certificate needs common_name';
  for (const [key, value] of params) {
    const problem = PARAMETERS[key]?.(value);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/**
 * Files reading one role with different parameters get different certificates, so a certificate file and a key
 * file could come from two issues that do not match. When a role is asked with more than one set of parameters,
 * each set must hold its own certificate and private_key (a whole-secret file holds both).
 */
export function checkIssueSets(files: readonly FileRequest[], problems: ProblemDraft[]): void {
  const byRole = new Map<string, Map<string, FileRequest[]>>();
  for (const file of files) {
    if (file.ref.provider !== 'vault' || file.ref.query === undefined) continue;
    const sets = byRole.get(file.ref.path) ?? new Map<string, FileRequest[]>();
    sets.set(file.ref.query, [...(sets.get(file.ref.query) ?? []), file]);
    byRole.set(file.ref.path, sets);
  }
  for (const [path, sets] of byRole) {
    if (sets.size < 2) continue;
    for (const set of sets.values()) {
      const has = (field: string): boolean => set.some((f) => f.ref.field === undefined || f.ref.field === field);
      if (has('certificate') && has('private_key')) continue;
      const first = set[0];
      if (first === undefined) continue;
      problems.push({
        code: PROBLEM_CODES.badReference,
        annotation: `secret-${first.name}`,
        message: `${path} is asked with ${sets.size} different sets of parameters, which issue ${sets.size} different certificates, and the files with these parameters (${set.map((f) => f.name).join(', ')}) do not hold both the certificate and its private_key: give files of one certificate the same parameters, or give each certificate its own #certificate and #private_key files`,
      });
    }
  }
}

/**
 * What a certificate file cannot do that other files can: env and properties lines cannot hold a PEM block (refused
 * here rather than failing in the agent), and a certificate is issued again by its lifetime, not by a refresh.
 */
export function checkCertificateFiles(
  files: readonly FileRequest[],
  problems: ProblemDraft[],
  warnings: string[],
): void {
  for (const file of files) {
    if (file.ref.provider !== 'vault' || file.ref.query === undefined) continue;
    if (file.format === 'env' || file.format === 'properties')
      problems.push({
        code: PROBLEM_CODES.badFormat,
        annotation: `format-${file.name}`,
        message: `${file.format} lines cannot hold a certificate's PEM blocks: select one field in the reference (#certificate, #private_key, #issuing_ca, #ca_chain) or use json or yaml`,
      });
    if (file.refreshMs !== undefined)
      warnings.push(
        `${ANNOTATION_PREFIX}refresh-${file.name} is ignored: a certificate is issued again at about 2/3 of its lifetime; set its ttl parameter instead`,
      );
  }
}
