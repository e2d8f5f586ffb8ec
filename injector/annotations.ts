// The annotation contract (the annotation reference in README.md): `sidekey.io/*` annotations parsed into a
// typed request, or a list of problems that each name the annotation, say what is wrong and show a valid
// example. Pod-dependent checks (containers, UIDs, mounts) happen later, in plan.ts.
import { ANNOTATION_PREFIX } from './constants.ts';
import { AGENT_LOG_LEVELS, AWS_REGION, CLASSIC_REMOVED, FILE_NAME, MAX_FILES, MODES, OUTPUT_FORMATS } from './agent-config.ts';
import type { Mode, OutputFormat } from './agent-config.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { PROBLEM_CODES, example, quote } from './problems.ts';
import type { Problem } from './problems.ts';
import { parseReference } from './reference.ts';
import type { SecretReference } from './reference.ts';
import { POD_VAULT_AUTH, QUANTITY, VAULT_AUTH_PATH, VAULT_NAMESPACE, VAULT_ROLE } from './settings.ts';
import { templateFields, templateSyntaxProblem } from './template-syntax.ts';
import { vaultAddrProblem } from './http-url.ts';
import { parseReload } from './reload.ts';
import type { ReloadRequest } from './reload.ts';
import { parseCaObject } from './vault-ca.ts';
import type { CaObject } from './vault-ca.ts';

export interface FileRequest {
  readonly name: string;
  readonly ref: SecretReference;
  readonly format?: OutputFormat;
  readonly template?: string;
  readonly refreshMs?: number;
}

export interface VaultRequest {
  readonly addr?: string;
  readonly auth?: (typeof POD_VAULT_AUTH)[number];
  readonly authPath?: string;
  readonly role?: string;
  readonly namespace?: string;
  /** approle: the Secret (keys role-id, secret-id) mounted into the agent only. */
  readonly approleSecret?: string;
  /** The ConfigMap or Secret key holding the Vault CA, mounted into the agent only. */
  readonly ca?: CaObject;
}

export interface AnnotationRequest {
  readonly files: readonly FileRequest[];
  readonly mode?: Mode;
  readonly mountPath?: string;
  readonly containers?: readonly string[];
  readonly fileMode?: number;
  readonly reload: ReloadRequest;
  readonly reloadContainer?: string;
  readonly refreshMs?: number;
  readonly awsRegion?: string;
  readonly vault: VaultRequest;
  readonly agentCpu?: string;
  readonly agentMemory?: string;
  readonly tmpfsSize?: string;
  readonly logLevel?: (typeof AGENT_LOG_LEVELS)[number];
}

export type AnnotationDecision =
  | { readonly kind: 'skip'; readonly reason: string }
  | { readonly kind: 'parsed'; readonly request: AnnotationRequest; readonly problems: readonly Problem[]; readonly warnings: readonly string[] };

export const FILE_KEYS = ['secret', 'template', 'format', 'refresh'] as const;
type FileKey = (typeof FILE_KEYS)[number];

/** A valid example value for every annotation, used in messages. */
export const EXAMPLES: Readonly<Record<string, string>> = {
  inject: 'true',
  secret: 'aws:prod/db#password',
  template: 'postgres://{{ .username }}:{{ .password }}@db/app',
  format: 'json',
  refresh: '1h',
  'mount-path': '/var/run/secrets/sidekey',
  containers: 'app,worker',
  'file-mode': '0400',
  reload: 'signal:SIGHUP',
  'reload-container': 'app',
  mode: 'sidecar',
  'aws-region': 'eu-west-1',
  'vault-addr': 'https://vault.vault.svc:8200',
  'vault-role': 'payments',
  'vault-auth-path': 'kubernetes',
  'vault-auth': 'kubernetes',
  'vault-namespace': 'team-a',
  'vault-approle-secret': 'payments-approle',
  'vault-ca': 'configmap:vault-ca#ca.crt',
  'agent-cpu': '10m',
  'agent-memory': '96Mi',
  'tmpfs-size': '1Mi',
  'log-level': 'debug',
  status: 'injected',
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

type Draft = { -readonly [K in keyof AnnotationRequest]: AnnotationRequest[K] };

interface FileDraft {
  secret?: string;
  template?: string;
  format?: string;
  refresh?: string;
}

/** A problem with an annotation (key without the prefix), with a valid example line of it when there is one. */
export function annotationProblem(code: Problem['code'], annotation: string, message: string): Problem {
  const base = FILE_KEYS.find((k) => annotation.startsWith(`${k}-`)) ?? annotation;
  const value = EXAMPLES[base];
  const exampleKey = code === PROBLEM_CODES.badFileName ? `${base}-db` : annotation;
  return { code, annotation, message, ...(value === undefined ? {} : { example: example(exampleKey, value) }) };
}

/**
 * Problems one refusal lists. Past it the remaining annotations are not checked: a review of 3 MiB can carry
 * some 40,000 annotations, and each unknown key costs an edit distance per known key.
 */
export const MAX_PROBLEMS = 20;

class Findings {
  readonly problems: Problem[] = [];
  readonly warnings: string[] = [];
  /** Some problems (or annotations) were left unchecked. */
  truncated = false;
  get full(): boolean {
    return this.problems.length >= MAX_PROBLEMS;
  }
  add(code: Problem['code'], annotation: string, message: string): void {
    this.push(annotationProblem(code, annotation, message));
  }
  push(problem: Problem): void {
    if (this.full) this.truncated = true;
    else this.problems.push(problem);
  }
  /** The closing problem of a truncated list, which says that more may follow. */
  close(): void {
    if (!this.truncated) return;
    this.problems.push({
      code: PROBLEM_CODES.tooMany,
      message: `only the first ${MAX_PROBLEMS} problems are listed and the rest of the annotations were not checked; fix these and submit again`,
    });
  }
}

export interface AnnotationLimits {
  /** sidekey.io/refresh* below this are refused. */
  readonly minRefreshMs: number;
}

/** Containers that get the mount at most: each costs a patch operation, and a review of 3 MiB can list 40,000. */
export const MAX_TARGETS = 64;

/**
 * `sidekey.io/` annotations read at most: every pod key once, four per file. Past it the pod is refused
 * before any is parsed (a review of 3 MiB can carry some 40,000).
 */
export const MAX_OWN_ANNOTATIONS = 64 + FILE_KEYS.length * MAX_FILES;

/** Whether a `sidekey.io/inject` value opts in: any but absent or "false" (a mistyped one is refused with the fix, not ignored). */
export function optsIn(inject: string | undefined): inject is string {
  return inject !== undefined && inject !== 'false';
}

/** Reads the `sidekey.io/` annotations of a pod (a pod carrying `sidekey.io/status: injected …` is verified by the caller first). */
export function parseAnnotations(annotations: Readonly<Record<string, string>>, limits: AnnotationLimits): AnnotationDecision {
  const inject = annotations[`${ANNOTATION_PREFIX}inject`];
  if (!optsIn(inject)) return { kind: 'skip', reason: 'not opted in' };
  const own = new Map<string, string>();
  let count = 0;
  for (const key of Object.keys(annotations)) {
    if (!key.startsWith(ANNOTATION_PREFIX)) continue;
    count += 1;
    if (count <= MAX_OWN_ANNOTATIONS) own.set(key.slice(ANNOTATION_PREFIX.length), annotations[key] ?? '');
  }
  if (count > MAX_OWN_ANNOTATIONS) {
    const problem = { code: PROBLEM_CODES.tooMany, message: `the pod has ${count} ${ANNOTATION_PREFIX} annotations; at most ${MAX_OWN_ANNOTATIONS} are read (${MAX_FILES} files)` };
    return { kind: 'parsed', request: { files: [], reload: { kind: 'none' }, vault: {} }, problems: [problem], warnings: [] };
  }
  const status = own.get('status');
  const findings = new Findings();
  if (inject !== 'true') findings.add(PROBLEM_CODES.badInject, 'inject', `must be "true" or "false", not ${quote(inject)}`);
  if (status !== undefined) findings.add(PROBLEM_CODES.badStatus, 'status', 'is written by the webhook; remove it');
  const draft: Draft = { files: [], reload: { kind: 'none' }, vault: {} };
  const perFile = new Map<string, FileDraft>();
  for (const [key, value] of own) {
    if (findings.full) {
      findings.truncated = true;
      break;
    }
    if (key === 'inject' || key === 'status') continue;
    const fileKey = FILE_KEYS.find((k) => key.startsWith(`${k}-`));
    if (fileKey === undefined) {
      readPodKey(key, value, { draft, findings, limits });
      continue;
    }
    const name = key.slice(fileKey.length + 1);
    const entry = perFile.get(name) ?? {};
    entry[fileKey] = value;
    perFile.set(name, entry);
  }
  draft.files = readFiles(perFile, findings, limits);
  findings.close();
  return { kind: 'parsed', request: draft, problems: findings.problems, warnings: findings.warnings };
}

interface KeyContext {
  readonly draft: Draft;
  readonly findings: Findings;
  readonly limits: AnnotationLimits;
}

type KeyReader = (value: string, ctx: KeyContext, key: string) => void;

/** A reader of a value that must match `pattern` within `max` characters; `store` puts it into the draft. */
function patternField(code: Problem['code'], pattern: RegExp, what: string, max: number, store: (draft: Draft, value: string) => void): KeyReader {
  return (value, { draft, findings }, key) => {
    if (value.length <= max && pattern.test(value)) store(draft, value);
    else findings.add(code, key, `is not ${what}`);
  };
}

function quantityField(store: (draft: Draft, value: string) => void): KeyReader {
  return patternField(PROBLEM_CODES.badQuantity, QUANTITY, 'a Kubernetes quantity such as 10m, 48Mi or 1Gi', 32, store);
}

function vaultField(field: keyof VaultRequest, pattern: RegExp, what: string): KeyReader {
  return patternField(PROBLEM_CODES.badBackend, pattern, what, 128, (draft, value) => {
    draft.vault = { ...draft.vault, [field]: value };
  });
}

const POD_KEYS: Readonly<Record<string, KeyReader>> = {
  'log-level': (value, { draft, findings }, key) => {
    const level = AGENT_LOG_LEVELS.find((l) => l === value);
    if (level !== undefined) draft.logLevel = level;
    else findings.add(PROBLEM_CODES.badLogLevel, key, `must be one of ${AGENT_LOG_LEVELS.join(', ')}, not ${quote(value)}`);
  },
  mode: (value, { draft, findings }, key) => {
    if ((MODES as readonly string[]).includes(value)) draft.mode = value as Mode;
    else if (value === 'classic') findings.add(PROBLEM_CODES.badMode, key, CLASSIC_REMOVED);
    else findings.add(PROBLEM_CODES.badMode, key, `must be one of ${MODES.join(', ')}, not ${quote(value)}`);
  },
  'mount-path': (value, { draft }) => {
    draft.mountPath = value;
  },
  containers: (value, { draft, findings }, key) => {
    const names = value.split(',', MAX_TARGETS + 1).map((s) => s.trim());
    if (names.length > MAX_TARGETS) {
      findings.add(PROBLEM_CODES.tooMany, key, `lists more than ${MAX_TARGETS} containers; at most ${MAX_TARGETS} get the mount`);
      return;
    }
    const bad = names.find((n) => !DNS_LABEL.test(n));
    if (bad !== undefined) findings.add(PROBLEM_CODES.unknownContainer, key, `${quote(bad)} is not a container name (comma-separated list)`);
    else if (new Set(names).size !== names.length) findings.add(PROBLEM_CODES.unknownContainer, key, 'lists a container twice');
    else draft.containers = names;
  },
  'file-mode': (value, { draft, findings }, key) => {
    const match = /^(?:0o?)?([0-7]{3})$/.exec(value);
    const mode = match?.[1] === undefined ? undefined : Number.parseInt(match[1], 8);
    if (mode === undefined) findings.add(PROBLEM_CODES.badFileMode, key, 'must be an octal mode such as 0400, 0440 or 0444');
    else if ((mode & 0o111) !== 0) findings.add(PROBLEM_CODES.badFileMode, key, 'must not have execute bits: the files are data');
    else if ((mode & 0o444) === 0) findings.add(PROBLEM_CODES.badFileMode, key, 'gives nobody read access');
    else draft.fileMode = mode;
  },
  reload: (value, { draft, findings }, key) => {
    const parsed = parseReload(value);
    if (parsed.ok) draft.reload = parsed.reload;
    else findings.add(PROBLEM_CODES.badReload, key, parsed.problem);
  },
  'reload-container': (value, { draft, findings }, key) => {
    if (DNS_LABEL.test(value)) draft.reloadContainer = value;
    else findings.add(PROBLEM_CODES.unknownContainer, key, `${quote(value)} is not a container name`);
  },
  refresh: (value, ctx, key) => {
    const ms = readRefresh(value, ctx.findings, key, ctx.limits);
    if (ms !== undefined) ctx.draft.refreshMs = ms;
  },
  'aws-region': patternField(PROBLEM_CODES.badBackend, AWS_REGION, 'an AWS region such as eu-west-1', 32, (draft, value) => {
    draft.awsRegion = value;
  }),
  'vault-addr': (value, { draft, findings }, key) => {
    const problem = vaultAddrProblem(value);
    if (problem === undefined) draft.vault = { ...draft.vault, addr: value };
    else findings.add(PROBLEM_CODES.badBackend, key, problem);
  },
  'vault-auth': (value, { draft, findings }, key) => {
    const auth = POD_VAULT_AUTH.find((a) => a === value);
    if (auth !== undefined) draft.vault = { ...draft.vault, auth };
    else findings.add(PROBLEM_CODES.badBackend, key, `must be one of ${POD_VAULT_AUTH.join(', ')}, not ${quote(value)}`);
  },
  'vault-role': vaultField('role', VAULT_ROLE, 'a Vault role name ([A-Za-z0-9_.@-], at most 128)'),
  'vault-auth-path': vaultField('authPath', VAULT_AUTH_PATH, 'an auth mount path without "auth/" such as kubernetes or k8s/prod'),
  'vault-namespace': vaultField('namespace', VAULT_NAMESPACE, 'a Vault namespace such as team-a or team-a/payments'),
  'vault-approle-secret': vaultField('approleSecret', DNS_SUBDOMAIN, 'a Secret name (keys role-id and secret-id)'),
  'vault-ca': (value, { draft, findings }, key) => {
    const parsed = parseCaObject(value);
    if (parsed.ok) draft.vault = { ...draft.vault, ca: parsed.ca };
    else findings.add(PROBLEM_CODES.badBackend, key, parsed.problem);
  },
  'agent-cpu': quantityField((draft, value) => {
    draft.agentCpu = value;
  }),
  'agent-memory': quantityField((draft, value) => {
    draft.agentMemory = value;
  }),
  'tmpfs-size': quantityField((draft, value) => {
    draft.tmpfsSize = value;
  }),
};

function readPodKey(key: string, value: string, ctx: KeyContext): void {
  const reader = POD_KEYS[key];
  if (reader !== undefined) {
    reader(value, ctx, key);
    return;
  }
  const known = [...Object.keys(EXAMPLES).filter((k) => !(FILE_KEYS as readonly string[]).includes(k)), ...FILE_KEYS.map((k) => `${k}-<name>`)];
  const guess = closest(key, Object.keys(POD_KEYS));
  ctx.findings.push({
    code: PROBLEM_CODES.unknownAnnotation,
    annotation: key,
    message: `unknown annotation${guess === undefined ? '' : `; did you mean "${ANNOTATION_PREFIX}${guess}"?`} (known: ${known.join(', ')})`,
    example: guess === undefined ? example('secret-db', EXAMPLES['secret'] ?? '') : example(guess, EXAMPLES[guess] ?? ''),
  });
}

/** The candidate within two edits of `word` (a typo such as mountpath or refesh), if any. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  if (word.length > 40) return undefined;
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function readRefresh(value: string, findings: Findings, key: string, limits: AnnotationLimits): number | undefined {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) {
    findings.add(PROBLEM_CODES.badDuration, key, 'is not a Go-style duration such as 90s, 15m or 1h30m');
    return undefined;
  }
  if (ms < limits.minRefreshMs) {
    findings.add(PROBLEM_CODES.badDuration, key, `is shorter than the floor of ${formatDuration(limits.minRefreshMs)} that protects the backends`);
    return undefined;
  }
  if (ms > 2 ** 31 - 1) {
    findings.add(PROBLEM_CODES.badDuration, key, 'is longer than 24 days (596h)');
    return undefined;
  }
  return ms;
}

function readFiles(perFile: ReadonlyMap<string, FileDraft>, findings: Findings, limits: AnnotationLimits): FileRequest[] {
  const files: FileRequest[] = [];
  if (perFile.size > MAX_FILES) {
    findings.push({ code: PROBLEM_CODES.tooMany, message: `the pod names ${perFile.size} files (secret-, template-, format-, refresh-<name>); the agent writes at most ${MAX_FILES}` });
    return files;
  }
  const lowerNames = new Map<string, string>();
  for (const [name, entry] of perFile) {
    if (findings.full) {
      findings.truncated = true;
      break;
    }
    if (!checkFileName(name, entry, findings)) continue;
    const clash = lowerNames.get(name.toLowerCase());
    if (clash !== undefined) {
      findings.add(PROBLEM_CODES.duplicateFile, `secret-${name}`, `names the same file as "${ANNOTATION_PREFIX}secret-${clash}" on a case-insensitive file system; rename one`);
      continue;
    }
    lowerNames.set(name.toLowerCase(), name);
    const file = readFile(name, entry, findings, limits);
    if (file !== undefined) files.push(file);
  }
  if (files.length === 0 && findings.problems.length === 0) {
    findings.add(PROBLEM_CODES.noSecrets, 'inject', `is "true" but the pod has no ${ANNOTATION_PREFIX}secret-<name> annotation`);
  }
  return files;
}

function checkFileName(name: string, entry: FileDraft, findings: Findings): boolean {
  const keys = Object.keys(entry) as FileKey[];
  if (!FILE_NAME.test(name) || name.includes('..')) {
    for (const k of keys) {
      findings.add(PROBLEM_CODES.badFileName, `${k}-${name}`, 'the file name must be one path segment of [A-Za-z0-9_.-], not starting with "." and without ".."');
    }
    return false;
  }
  if (entry.secret === undefined) {
    for (const k of keys) findings.add(PROBLEM_CODES.orphan, `${k}-${name}`, `has no matching "${ANNOTATION_PREFIX}secret-${name}"`);
    return false;
  }
  return true;
}

function readFile(name: string, entry: FileDraft, findings: Findings, limits: AnnotationLimits): FileRequest | undefined {
  const parsed = parseReference(entry.secret ?? '');
  if (!parsed.ok) {
    findings.add(PROBLEM_CODES.badReference, `secret-${name}`, `${parsed.problem}; the grammar is <provider>:<path>[#<field>][@<version>]`);
    return undefined;
  }
  const ref = parsed.ref;
  const before = findings.problems.length;
  const format = entry.format === undefined ? undefined : readFormat(name, entry, ref, findings);
  if (entry.template !== undefined) checkTemplate(name, entry.template, ref, findings);
  const refreshMs = entry.refresh === undefined ? undefined : readRefresh(entry.refresh, findings, `refresh-${name}`, limits);
  if (findings.problems.length > before) return undefined;
  return {
    name,
    ref,
    ...(format === undefined ? {} : { format }),
    ...(entry.template === undefined ? {} : { template: entry.template }),
    ...(refreshMs === undefined ? {} : { refreshMs }),
  };
}

function readFormat(name: string, entry: FileDraft, ref: SecretReference, findings: Findings): OutputFormat | undefined {
  const key = `format-${name}`;
  const format = OUTPUT_FORMATS.find((f) => f === entry.format);
  if (format === undefined) {
    findings.add(PROBLEM_CODES.badFormat, key, `must be one of ${OUTPUT_FORMATS.join(', ')}, not ${quote(entry.format ?? '')}`);
  } else if (entry.template !== undefined) {
    findings.add(PROBLEM_CODES.badFormat, key, `conflicts with "${ANNOTATION_PREFIX}template-${name}": a template replaces the format; keep one`);
  } else if ((format === 'env' || format === 'properties') && ref.field !== undefined) {
    findings.add(PROBLEM_CODES.badFormat, key, `${format} writes key=value lines of a whole secret; drop "#${ref.field}" from the reference`);
  } else {
    return format;
  }
  return undefined;
}

function checkTemplate(name: string, template: string, ref: SecretReference, findings: Findings): void {
  const key = `template-${name}`;
  if (template.length > 65_536) {
    findings.add(PROBLEM_CODES.badTemplate, key, 'is longer than 64 KiB');
    return;
  }
  const syntax = templateFields(template);
  if (!syntax.ok) {
    findings.add(PROBLEM_CODES.badTemplate, key, templateSyntaxProblem(syntax.offset));
  } else if (ref.field !== undefined && syntax.fields.some((f) => f !== '')) {
    findings.add(PROBLEM_CODES.badTemplate, key, `uses {{ .field }} but the reference selects the single field "#${ref.field}"; drop it from "${ANNOTATION_PREFIX}secret-${name}" or use {{ . }}`);
  }
}
