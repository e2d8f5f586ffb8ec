// The certificate forms of vault-k8s templates: `with secret "<mount>/issue/<role>" "common_name=…" …` reading
// `.Data.certificate`, `.Data.private_key`, `.Data.issuing_ca`, `.Data.serial_number` or ranging over
// `.Data.ca_chain`, and consul-template's `with pkiCert …` reading `.Cert`, `.Key` and `.CA` (each PEM re-encoded
// with a newline after it). The `k=v` arguments become a Sidekey reference's ?parameters through the injector's own
// reference parser, so they come out in its canonical order, and a value admission would refuse is left with
// admission's reason rather than translated into a pod that cannot start.
import type { FileRequest } from '../injector/annotations.ts';
import { defined } from '../injector/defined.ts';
import type { ProblemDraft } from '../injector/providers/declaration.ts';
import { parseReference } from '../injector/reference-parse.ts';
import { CERT_FIELDS, ISSUE_PARAMETERS, checkIssueSets, isIssuePath } from '../providers/vault/injector/vault-pki.ts';
import type { FileTranslation, Token } from './migrate-template.ts';

/** The consul-template functions a `with` block reads from. */
export type SourceKind = 'secret' | 'pkiCert';

/** What a `with` block reads: a secret, or (with `query`) a certificate issued with those canonical parameters. */
export interface Source {
  readonly kind: SourceKind;
  readonly path: string;
  readonly query?: string;
}

/** A certificate field a read names; pkiCert's fields end with a newline that Vault's do not have. */
export interface CertRead {
  readonly field: string;
  readonly newline: boolean;
}

const ARGUMENT = /\s*"([^"\\]*)"/y;
const PKI_CERT_READ = /^(?:\.Data)?\.(Cert|Key|CA)$/;
/** pkiCert's fields: the CA is the one CA certificate among the issue's PEM strings, issuing_ca. */
const PKI_CERT_FIELDS: Readonly<Record<string, string>> = { Cert: 'certificate', Key: 'private_key', CA: 'issuing_ca' };
/** What `.Data.<field>` of an issue prints as Sidekey writes it (ca_chain prints as a Go list). */
const ISSUE_READS: readonly string[] = CERT_FIELDS.filter((f) => f !== 'ca_chain');

/** The quoted `"k=v"` arguments after the path, or undefined when there is anything else. */
function quotedArguments(text: string): string[] | undefined {
  const args: string[] = [];
  ARGUMENT.lastIndex = 0;
  while (ARGUMENT.lastIndex < text.length) {
    const start = ARGUMENT.lastIndex;
    const match = ARGUMENT.exec(text);
    if (match === null) return text.slice(start).trim() === '' ? args : undefined;
    args.push(match[1] ?? '');
  }
  return args;
}

/** The canonical ?parameters of an issue, or why Sidekey would not issue with them. */
function issueQuery(kind: SourceKind, path: string, args: readonly string[]): Source | string {
  const opened = `with ${kind} "${path}"`;
  if (args.length === 0) return `${opened} passes no common_name, which a Sidekey certificate needs`;
  for (const arg of args) {
    const key = arg.slice(0, Math.max(0, arg.indexOf('=')));
    if (key === '') return `${opened} passes "${arg.slice(0, 40)}", which is not a key=value parameter`;
    if (!ISSUE_PARAMETERS.includes(key))
      return `${opened} passes the parameter "${key.slice(0, 40)}", which Sidekey does not issue with (only ${ISSUE_PARAMETERS.join(', ')})`;
    if (arg.includes('&')) return `${opened} passes a ${key} with "&", which no certificate name has`;
  }
  const parsed = parseReference(`vault:${path}?${args.join('&')}`);
  if (!parsed.ok) return `${opened}: admission would refuse the certificate: ${parsed.problem}`;
  return { kind, path: parsed.ref.path, ...defined({ query: parsed.ref.query }) };
}

/** What `with secret|pkiCert "PATH" ARGS` reads, or why it has no Sidekey form. */
export function openSource(kind: SourceKind, rawPath: string, rest: string): Source | string {
  const path = rawPath.replace(/^\/+/, '');
  const args = quotedArguments(rest);
  if (args === undefined) return `with ${kind} "${path}" takes arguments other than quoted "key=value" strings`;
  if (kind === 'secret' && args.length === 0) return { kind, path };
  if (!isIssuePath(path))
    return kind === 'secret'
      ? `with secret "${path}" passes parameters, which makes the read a write: Sidekey writes to Vault only to issue a certificate from <mount>/issue/<role>`
      : `with pkiCert "${path}" is not a <mount>/issue/<role> path, where Sidekey issues certificates`;
  return issueQuery(kind, path, args);
}

/** The field a read inside a certificate block names: a CertRead, a reason, or undefined when it is no read. */
export function certRead(kind: SourceKind, body: string, field: string | undefined): CertRead | string | undefined {
  if (kind === 'pkiCert') {
    const name = PKI_CERT_READ.exec(body)?.[1];
    const mapped = name === undefined ? undefined : PKI_CERT_FIELDS[name];
    return mapped === undefined ? undefined : { field: mapped, newline: true };
  }
  if (field === undefined) return undefined;
  if (field === 'ca_chain')
    return '{{ .Data.ca_chain }} prints the chain as a Go list: range over it ({{ range .Data.ca_chain }}{{ . }}\\n{{ end }})';
  if (!ISSUE_READS.includes(field))
    return `{{ ${body} }} is not a certificate field Sidekey writes (${CERT_FIELDS.join(', ')})`;
  return { field, newline: false };
}

/**
 * `{{ range .Data.ca_chain }}P{{ . }}S{{ end }}` as `P{{ .ca_chain }}S`: the same bytes when S then P is one newline,
 * since Sidekey's ca_chain is the chain's PEMs joined by newlines. The text before, the read, the text after.
 */
export function chainRange(body: readonly Token[]): readonly [string, CertRead, string] | string {
  const actions = body.filter((t) => t.kind === 'action');
  const at = body.findIndex((t) => t.kind === 'action');
  const text = (tokens: readonly Token[]): string => tokens.map((t) => (t.kind === 'text' ? t.text : '')).join('');
  const prefix = text(body.slice(0, at));
  const suffix = text(body.slice(at + 1));
  if (actions.length !== 1 || actions[0]?.body !== '.' || `${suffix}${prefix}` !== '\n')
    return 'its range over .Data.ca_chain writes more than each certificate and one newline between them';
  return [prefix, { field: 'ca_chain', newline: false }, suffix];
}

/** What to know about a translated certificate file. */
export function issueNotes(kind: SourceKind): string[] {
  const schedule =
    kind === 'pkiCert'
      ? 'pkiCert re-issued at about 90% of the lifetime'
      : 'vault-k8s re-rendered it on its own schedule';
  return [
    `${schedule}; Sidekey re-issues at about 2/3 of the lifetime and reloads the app with sidekey.io/reload (none unless set)`,
  ];
}

/** What becomes of one certificate file of a pod: left with admission's reason, or translated with a note. */
export type CertificateCheck = { readonly reason: string } | { readonly note: string };

/**
 * A pod's translated files checked as admission checks its certificates (two parameter sets of one role must each
 * hold a certificate and its key): per certificate file, admission's reason when it refuses the file's set, or,
 * where several files share one issue, the note that vault-k8s gave each template its own certificate.
 */
export function checkCertificates(files: ReadonlyMap<string, FileTranslation>): Map<string, CertificateCheck> {
  const requests: FileRequest[] = [...files].flatMap(([name, file]) =>
    file.query === undefined
      ? []
      : [
          {
            name,
            ref: { provider: 'vault' as const, path: file.path, query: file.query, ...defined({ field: file.field }) },
          },
        ],
  );
  const problems: ProblemDraft[] = [];
  checkIssueSets(requests, problems);
  const issueOf = (r: FileRequest): string => `${r.ref.path}?${r.ref.query ?? ''}`;
  // Admission names a refused set by its first file's annotation.
  const refused = new Map(
    problems.flatMap((p) => {
      const first = requests.find((r) => `secret-${r.name}` === p.annotation);
      return first === undefined ? [] : [[issueOf(first), p.message] as const];
    }),
  );
  const checks = new Map<string, CertificateCheck>();
  for (const request of requests) {
    const reason = refused.get(issueOf(request));
    const sharing = requests.filter((r) => issueOf(r) === issueOf(request)).map((r) => r.name);
    if (reason !== undefined) checks.set(request.name, { reason });
    else if (sharing.length > 1)
      checks.set(request.name, {
        note: `one issue serves ${sharing.join(', ')}, so the key matches the certificate: vault-k8s issued a certificate per template, each of these files from another issue`,
      });
  }
  return checks;
}
