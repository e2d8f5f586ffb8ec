// The annotation contract (the annotation reference in README.md): `sidekey.io/*` annotations parsed into a
// typed request, or a list of problems that each name the annotation, say what is wrong and show a valid
// example. Pod-dependent checks (containers, UIDs, mounts) happen later, in plan.ts.
import { ANNOTATION_PREFIX } from './constants.ts';
import { AGENT_LOG_LEVELS, CLASSIC_REMOVED, MAX_FILES, MODES } from './agent-config.ts';
import type { Mode, OutputFormat } from './agent-config.ts';
import { Findings, patternField } from './annotation-spec.ts';
import type { AnnotationLimits, AnnotationSpec, Draft, KeyContext, KeyReader } from './annotation-spec.ts';
import { PROBLEM_CODES, example, quote } from './problems.ts';
import type { Problem } from './problems.ts';
import { PROVIDER_ANNOTATIONS, PROVIDER_DOCS } from './providers/index.ts';
import { PROVIDERS } from './providers/names.ts';
import type { SecretReference } from './reference.ts';
import { readFiles, readRefresh } from './annotation-files.ts';
import type { FileDraft } from './annotation-files.ts';
import { QUANTITY, injectionSettingsSchema } from './settings.ts';
import { parseReload } from './reload.ts';
import type { ReloadRequest } from './reload.ts';

export interface FileRequest {
  readonly name: string;
  readonly ref: SecretReference;
  readonly format?: OutputFormat;
  readonly template?: string;
  readonly refreshMs?: number;
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
  /** Each provider's own annotations (sidekey.io/aws-region, sidekey.io/vault-*), as its readers store them. */
  readonly providers: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly agentCpu?: string;
  readonly agentMemory?: string;
  readonly tmpfsSize?: string;
  readonly logLevel?: (typeof AGENT_LOG_LEVELS)[number];
}

export type AnnotationDecision =
  | { readonly kind: 'skip'; readonly reason: string }
  | {
      readonly kind: 'parsed';
      readonly request: AnnotationRequest;
      readonly problems: readonly Problem[];
      readonly warnings: readonly string[];
    };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const defaults = injectionSettingsSchema.parse({});

function quantityField(store: (draft: Draft, value: string) => void): KeyReader {
  return patternField(PROBLEM_CODES.badQuantity, QUANTITY, 'a Kubernetes quantity such as 10m, 48Mi or 1Gi', 32, store);
}

const readContainers: KeyReader = (value, { draft, findings }, key) => {
  const names = value.split(',', MAX_TARGETS + 1).map((s) => s.trim());
  if (names.length > MAX_TARGETS) {
    findings.add(
      PROBLEM_CODES.tooMany,
      key,
      `lists more than ${MAX_TARGETS} containers; at most ${MAX_TARGETS} get the mount`,
    );
    return;
  }
  const bad = names.find((n) => !DNS_LABEL.test(n));
  if (bad !== undefined)
    findings.add(PROBLEM_CODES.unknownContainer, key, `${quote(bad)} is not a container name (comma-separated list)`);
  else if (new Set(names).size !== names.length)
    findings.add(PROBLEM_CODES.unknownContainer, key, 'lists a container twice');
  else draft.containers = names;
};

const readFileMode: KeyReader = (value, { draft, findings }, key) => {
  const match = /^(?:0o?)?([0-7]{3})$/.exec(value);
  const mode = match?.[1] === undefined ? undefined : Number.parseInt(match[1], 8);
  if (mode === undefined)
    findings.add(PROBLEM_CODES.badFileMode, key, 'must be an octal mode such as 0400, 0440 or 0444');
  else if ((mode & 0o111) !== 0)
    findings.add(PROBLEM_CODES.badFileMode, key, 'must not have execute bits: the files are data');
  else if ((mode & 0o444) === 0) findings.add(PROBLEM_CODES.badFileMode, key, 'gives nobody read access');
  else draft.fileMode = mode;
};

const readMode: KeyReader = (value, { draft, findings }, key) => {
  const mode = MODES.find((m) => m === value);
  if (mode !== undefined) draft.mode = mode;
  else if (value === 'classic') findings.add(PROBLEM_CODES.badMode, key, CLASSIC_REMOVED);
  else findings.add(PROBLEM_CODES.badMode, key, `must be one of ${MODES.join(', ')}, not ${quote(value)}`);
};

const readLogLevel: KeyReader = (value, { draft, findings }, key) => {
  const level = AGENT_LOG_LEVELS.find((l) => l === value);
  if (level !== undefined) draft.logLevel = level;
  else
    findings.add(PROBLEM_CODES.badLogLevel, key, `must be one of ${AGENT_LOG_LEVELS.join(', ')}, not ${quote(value)}`);
};

const readReload: KeyReader = (value, { draft, findings }, key) => {
  const parsed = parseReload(value);
  if (parsed.ok) draft.reload = parsed.reload;
  else findings.add(PROBLEM_CODES.badReload, key, parsed.problem);
};

const readReloadContainer: KeyReader = (value, { draft, findings }, key) => {
  if (DNS_LABEL.test(value)) draft.reloadContainer = value;
  else findings.add(PROBLEM_CODES.unknownContainer, key, `${quote(value)} is not a container name`);
};

const readPodRefresh: KeyReader = (value, ctx, key) => {
  const ms = readRefresh(value, ctx.findings, key, ctx.limits);
  if (ms !== undefined) ctx.draft.refreshMs = ms;
};

const SECRET_DOC = [
  `one output file \`<name>\` from a reference \`<provider>:<path>[#<field>][@<version>]\` (providers ${PROVIDERS.map((p) => `\`${p}\``).join(', ')})`,
  ...PROVIDER_DOCS.flatMap((d) => (d.referenceNote === undefined ? [] : [d.referenceNote])),
].join('; ');

/** The pod's files, their mount and its reload: the table's rows before the providers'. */
const FILE_ANNOTATIONS: readonly AnnotationSpec[] = [
  {
    key: 'inject',
    example: 'true',
    doc: '`"true"` opts the pod in; absent or `"false"` leaves it untouched',
    default: 'absent',
    read: 'gate',
  },
  { key: 'secret', example: 'aws:prod/db#password', doc: SECRET_DOC, default: '—', read: 'file' },
  {
    key: 'template',
    example: 'postgres://{{ .username }}:{{ .password }}@db/app',
    doc: "render file `<name>` from the secret's fields: `{{ .field }}` (and `{{ . }}` for a single field); no other actions",
    default: '—',
    read: 'file',
  },
  {
    key: 'format',
    example: 'json',
    doc: '`raw`, `json`, `yaml`, `env` or `properties`',
    default: '`raw` for one field, `json` for a whole secret',
    read: 'file',
  },
  {
    key: 'refresh',
    example: '1h',
    doc: `Go-style duration between fetches, for the pod (\`refresh\`) or one file (\`refresh-<name>\`); shorter than the webhook's floor (${defaults.minRefresh}) is refused`,
    default: '`1h` (AWS, Vault KV); lease-driven for Vault dynamic secrets; file store: watched',
    read: readPodRefresh,
    perFile: true,
  },
  {
    key: 'mount-path',
    example: '/var/run/secrets/sidekey',
    doc: 'where app containers see the files (read-only)',
    default: `\`${defaults.mountPath}\``,
    read: (value, { draft }) => {
      draft.mountPath = value;
    },
  },
  {
    key: 'containers',
    example: 'app,worker',
    doc: 'comma list of the containers that get the mount',
    default: 'all app containers',
    read: readContainers,
  },
  {
    key: 'file-mode',
    example: '0400',
    doc: 'octal mode of the written files (no execute bits)',
    default: "`0400` when the app's UID is known, `0440` with only an fsGroup, else `0444` plus a warning",
    read: readFileMode,
  },
  {
    key: 'reload',
    example: 'signal:SIGHUP',
    doc: '`none`, `signal:<SIG>` (needs a known UID; sets shareProcessNamespace) or `http:<url on 127.0.0.1/localhost>` (POST; plain http: an https URL is refused, the agent could not verify it)',
    default: '`none`',
    read: readReload,
  },
  {
    key: 'reload-container',
    example: 'app',
    doc: 'the container whose main process gets the signal',
    default: 'the first mounted container',
    read: readReloadContainer,
  },
  {
    key: 'mode',
    example: 'sidecar',
    doc: '`sidecar` (native sidecar) or `init-only` (write once; Jobs); `classic` (for clusters without native sidecars) was removed and is refused',
    default: `\`${defaults.defaultMode}\``,
    read: readMode,
  },
];

/** The agent container itself, and the webhook's own mark: the table's rows after the providers'. */
const AGENT_ANNOTATIONS: readonly AnnotationSpec[] = [
  {
    key: 'agent-cpu',
    example: '10m',
    doc: 'CPU request of the agent (no CPU limit)',
    default: `\`${defaults.resources.cpu}\``,
    read: quantityField((draft, value) => {
      draft.agentCpu = value;
    }),
  },
  {
    key: 'agent-memory',
    example: '96Mi',
    doc: 'memory request of the agent, at least 32Mi (less is refused); the limit is twice this',
    default: `\`${defaults.resources.memory}\``,
    read: quantityField((draft, value) => {
      draft.agentMemory = value;
    }),
  },
  {
    key: 'tmpfs-size',
    example: '1Mi',
    doc: '`sizeLimit` of the memory volume holding the files; a rotation keeps the old and the new set side by side, so give it at least twice the rendered files (a larger set is written once and then fails `TOO_LARGE`, naming the size it needs)',
    default: `\`${defaults.tmpfsSize}\``,
    read: quantityField((draft, value) => {
      draft.tmpfsSize = value;
    }),
  },
  {
    key: 'log-level',
    example: 'debug',
    doc: 'log level of the agent: `error`, `warn`, `info` or `debug` (env `SIDEKEY_LOG_LEVEL` of the agent container)',
    default: '`info`',
    read: readLogLevel,
  },
  {
    key: 'status',
    example: 'injected',
    doc: 'written by the webhook (`injected <hash>`); a pod created with it is accepted unchanged only when it holds exactly what the webhook injects for its annotations (a copy of an injected pod), else refused',
    default: 'set by the webhook',
    read: 'gate',
  },
];

/** Every `sidekey.io/` annotation: parsing, the examples in messages and the README's reference derive from it. */
export const ANNOTATIONS: readonly AnnotationSpec[] = [
  ...FILE_ANNOTATIONS,
  ...PROVIDER_ANNOTATIONS,
  ...AGENT_ANNOTATIONS,
];

/** A valid example value for every annotation, used in messages. */
export const EXAMPLES: Readonly<Record<string, string>> = Object.fromEntries(
  ANNOTATIONS.map((a) => [a.key, a.example]),
);

/** Keys also (or only) written `<key>-<name>`, one file each. */
export const FILE_KEYS: readonly string[] = ANNOTATIONS.filter((a) => a.read === 'file' || a.perFile === true).map(
  (a) => a.key,
);

/** Keys read before the others (inject, status). */
const GATES: ReadonlySet<string> = new Set(ANNOTATIONS.filter((a) => a.read === 'gate').map((a) => a.key));

const POD_READERS: ReadonlyMap<string, KeyReader> = new Map(
  ANNOTATIONS.flatMap((a) => (typeof a.read === 'function' ? [[a.key, a.read] as const] : [])),
);

/** A problem with an annotation (key without the prefix), with a valid example line of it when there is one. */
export function annotationProblem(code: Problem['code'], annotation: string, message: string): Problem {
  const base = FILE_KEYS.find((k) => annotation.startsWith(`${k}-`)) ?? annotation;
  const value = EXAMPLES[base];
  const exampleKey = code === PROBLEM_CODES.badFileName ? `${base}-db` : annotation;
  return { code, annotation, message, ...(value === undefined ? {} : { example: example(exampleKey, value) }) };
}

/** Containers that get the mount at most: each costs a patch operation, and a review of 3 MiB can list 40,000. */
export const MAX_TARGETS = 64;

/**
 * `sidekey.io/` annotations read at most: every pod key once, four per file. Past it the pod is refused
 * before any is parsed (a review of 3 MiB can carry some 40,000).
 */
export const MAX_OWN_ANNOTATIONS = 64 + FILE_KEYS.length * MAX_FILES;

/**
 * Whether a `sidekey.io/inject` value opts in: any but absent or "false" (a mistyped one is refused with the fix, not
 * ignored).
 */
export function optsIn(inject: string | undefined): inject is string {
  return inject !== undefined && inject !== 'false';
}

const emptyRequest = (): Draft => ({ files: [], reload: { kind: 'none' }, providers: {} });

/** The pod's own annotations without the prefix (the first MAX_OWN_ANNOTATIONS of them), and how many it has. */
function ownAnnotations(annotations: Readonly<Record<string, string>>): {
  readonly own: Map<string, string>;
  readonly count: number;
} {
  const own = new Map<string, string>();
  let count = 0;
  for (const key of Object.keys(annotations)) {
    if (!key.startsWith(ANNOTATION_PREFIX)) continue;
    count += 1;
    if (count <= MAX_OWN_ANNOTATIONS) own.set(key.slice(ANNOTATION_PREFIX.length), annotations[key] ?? '');
  }
  return { own, count };
}

/**
 * Reads the `sidekey.io/` annotations of a pod (a pod carrying `sidekey.io/status: injected …` is verified by the
 * caller first).
 */
export function parseAnnotations(
  annotations: Readonly<Record<string, string>>,
  limits: AnnotationLimits,
): AnnotationDecision {
  const inject = annotations[`${ANNOTATION_PREFIX}inject`];
  if (!optsIn(inject)) return { kind: 'skip', reason: 'not opted in' };
  const { own, count } = ownAnnotations(annotations);
  if (count > MAX_OWN_ANNOTATIONS) {
    const problem = {
      code: PROBLEM_CODES.tooMany,
      message: `the pod has ${count} ${ANNOTATION_PREFIX} annotations; at most ${MAX_OWN_ANNOTATIONS} are read (${MAX_FILES} files)`,
    };
    return { kind: 'parsed', request: emptyRequest(), problems: [problem], warnings: [] };
  }
  const findings = new Findings(annotationProblem);
  if (inject !== 'true')
    findings.add(PROBLEM_CODES.badInject, 'inject', `must be "true" or "false", not ${quote(inject)}`);
  if (own.has('status')) findings.add(PROBLEM_CODES.badStatus, 'status', 'is written by the webhook; remove it');
  const draft = emptyRequest();
  const perFile = readPodKeys(own, { draft, findings, limits });
  draft.files = readFiles(perFile, findings, limits);
  findings.close();
  return { kind: 'parsed', request: draft, problems: findings.problems, warnings: findings.warnings };
}

/** Reads every pod key into the draft and groups the per-file keys by file name. */
function readPodKeys(own: ReadonlyMap<string, string>, ctx: KeyContext): Map<string, FileDraft> {
  const perFile = new Map<string, FileDraft>();
  for (const [key, value] of own) {
    if (ctx.findings.full) {
      ctx.findings.truncated = true;
      break;
    }
    if (GATES.has(key)) continue;
    const fileKey = FILE_KEYS.find((k) => key.startsWith(`${k}-`));
    if (fileKey === undefined) {
      readPodKey(key, value, ctx);
      continue;
    }
    const name = key.slice(fileKey.length + 1);
    perFile.set(name, { ...perFile.get(name), [fileKey]: value });
  }
  return perFile;
}

function readPodKey(key: string, value: string, ctx: KeyContext): void {
  const reader = POD_READERS.get(key);
  if (reader !== undefined) {
    reader(value, ctx, key);
    return;
  }
  const known = [
    ...Object.keys(EXAMPLES).filter((k) => !FILE_KEYS.includes(k)),
    ...FILE_KEYS.map((k) => `${k}-<name>`),
  ];
  const guess = closest(key, [...POD_READERS.keys()]);
  ctx.findings.push({
    code: PROBLEM_CODES.unknownAnnotation,
    annotation: key,
    message: `unknown annotation${guess === undefined ? '' : `; did you mean "${ANNOTATION_PREFIX}${guess}"?`} (known: ${known.join(', ')})`,
    example:
      guess === undefined ? example('secret-db', EXAMPLES['secret'] ?? '') : example(guess, EXAMPLES[guess] ?? ''),
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
