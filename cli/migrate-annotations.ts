// vault-k8s (Vault Agent Injector) annotations of one pod translated into Sidekey's: which `sidekey.io/`
// annotations to add, which `vault.hashicorp.com/` ones they replace, and per vault-k8s annotation what became
// of it. What has no Sidekey equivalent is left in place with the reason. A file whose content cannot be
// translated is left whole (secret, template, name, mode), so that no file is written differently from what
// its annotations say; what only acts around a file (a command) is reported on its own.
import { FILE_NAME } from '../injector/agent-config.ts';
import { ANNOTATION_PREFIX } from '../injector/constants.ts';
import { formatReference } from '../injector/reference.ts';
import { checkCertificates } from './migrate-pki.ts';
import { translateDefault, translateTemplate } from './migrate-template.ts';
import type { DefaultTemplate, FileTranslation } from './migrate-template.ts';

const VAULT_PREFIX = 'vault.hashicorp.com/';
const INJECT = `${ANNOTATION_PREFIX}inject`;

/** Where vault-k8s mounts the files when `secret-volume-path` does not say. */
const VAULT_K8S_MOUNT = '/vault/secrets';

export type Outcome = 'translated' | 'untranslated';

/** What became of one vault-k8s annotation. */
export interface AnnotationResult {
  readonly key: string;
  readonly outcome: Outcome;
  /** Why it was left, or what to know about its translation. */
  readonly reason?: string;
  readonly notes: readonly string[];
}

export interface PodMigration {
  /** `sidekey.io/` annotations to add, in order. */
  readonly add: readonly (readonly [string, string])[];
  /** The vault-k8s annotations they replace. */
  readonly remove: ReadonlySet<string>;
  readonly results: readonly AnnotationResult[];
}

/** Per-file annotation kinds, longest first: `agent-inject-template-file-x` is not the template of `file-x`. */
const FILE_KEYS = [
  'agent-inject-template-file',
  'agent-template-left-delim',
  'agent-template-right-delim',
  'agent-inject-template',
  'agent-inject-secret',
  'agent-inject-command',
  'agent-inject-perms',
  'agent-inject-file',
  'secret-volume-path',
  'preserve-secret-case',
  'error-on-missing-key',
] as const;
type FileKey = (typeof FILE_KEYS)[number];

/** Pod-wide vault-k8s annotations with no Sidekey counterpart, and why. */
const NO_EQUIVALENT: Readonly<Record<string, string>> = {
  'agent-inject-token':
    "Sidekey never writes the agent's Vault token into the app's files; read the secrets the app needs instead",
  'agent-configmap': 'a whole Vault Agent configuration has no Sidekey form; translate its templates into annotations',
  'agent-extra-secret': 'Sidekey mounts no extra Secret into its agent',
  'tls-skip-verify': 'Sidekey always verifies Vault: give the CA with sidekey.io/vault-ca',
  'tls-server-name': 'Sidekey verifies the name in sidekey.io/vault-addr',
  'client-cert': 'Sidekey presents no client certificate to Vault',
  'client-key': 'Sidekey presents no client certificate to Vault',
  'ca-key': 'Sidekey reads one CA file: set sidekey.io/vault-ca',
  'proxy-address': "set the webhook's proxy setting",
  'agent-cache-enable': 'Sidekey has no cache listener: apps read files',
  'auth-config-': 'Sidekey logs in with the pod service-account token (kubernetes, jwt) or an approle Secret',
};

/** vault-k8s annotations Sidekey does not need: dropped, with what replaces them. */
const NOT_NEEDED: Readonly<Record<string, string>> = {
  'agent-inject-status': 'written by vault-k8s; Sidekey writes its own sidekey.io/status',
  'agent-init-first': 'the Sidekey agent is always the first init container',
  'agent-pre-populate': 'the Sidekey agent always writes the files before the app starts',
  'agent-limits-cpu': 'the Sidekey agent has no CPU limit',
  'agent-limits-mem': 'the Sidekey agent memory limit is twice its request (sidekey.io/agent-memory)',
  'agent-image': "the agent image is the webhook's setting",
  'agent-inject-default-template': 'read while translating the files',
  'preserve-secret-case': 'read while translating the file names',
  'error-on-missing-key': 'Sidekey always fails a missing field (FIELD_MISSING) and keeps the last good file',
};

/** Straight renames of pod-wide values. */
const RENAMED: Readonly<Record<string, string>> = {
  role: 'vault-role',
  namespace: 'vault-namespace',
  service: 'vault-addr',
  'agent-inject-containers': 'containers',
  'agent-requests-cpu': 'agent-cpu',
  'agent-requests-mem': 'agent-memory',
  'template-static-secret-render-interval': 'refresh',
};

/** strconv.ParseBool, which vault-k8s reads its booleans with. */
function parseBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

interface FileGroup {
  readonly raw: string;
  readonly keys: Partial<Record<FileKey, string>>;
}

class Results {
  readonly add: [string, string][] = [];
  readonly remove = new Set<string>();
  readonly results: AnnotationResult[] = [];
  private readonly existing: Readonly<Record<string, string>>;
  constructor(existing: Readonly<Record<string, string>>) {
    this.existing = existing;
  }

  /** Records `key` as translated into `to` (added unless already set to the same value). */
  translated(key: string, to: readonly (readonly [string, string])[], notes: readonly string[] = []): void {
    const clash = to.find(
      ([k, v]) =>
        this.existing[`${ANNOTATION_PREFIX}${k}`] !== undefined && this.existing[`${ANNOTATION_PREFIX}${k}`] !== v,
    );
    if (clash !== undefined) {
      this.untranslated(key, `${ANNOTATION_PREFIX}${clash[0]} is already set to another value`);
      return;
    }
    for (const [k, v] of to) {
      const full = `${ANNOTATION_PREFIX}${k}`;
      if (this.existing[full] === undefined && !this.add.some(([a]) => a === full)) this.add.push([full, v]);
    }
    this.remove.add(`${VAULT_PREFIX}${key}`);
    this.results.push({ key: `${VAULT_PREFIX}${key}`, outcome: 'translated', notes });
  }

  untranslated(key: string, reason: string): void {
    this.results.push({ key: `${VAULT_PREFIX}${key}`, outcome: 'untranslated', reason, notes: [] });
  }
}

/** The per-file annotations grouped by raw secret name; the rest in `pod`. */
function group(own: ReadonlyMap<string, string>): { files: Map<string, FileGroup>; pod: Map<string, string> } {
  const files = new Map<string, FileGroup>();
  const pod = new Map<string, string>();
  for (const [key, value] of own) {
    const kind = FILE_KEYS.find((k) => key.startsWith(`${k}-`));
    const raw = kind === undefined ? '' : key.slice(kind.length + 1);
    if (kind === undefined || raw === '') {
      pod.set(key, value);
      continue;
    }
    const entry = files.get(raw) ?? { raw, keys: {} };
    entry.keys[kind] = value;
    files.set(raw, entry);
  }
  return { files, pod };
}

interface Context {
  readonly pod: ReadonlyMap<string, string>;
  readonly mountPath: string;
  readonly defaultTemplate: DefaultTemplate;
}

/** The Sidekey file name of a group: agent-inject-file, else the name, lowercased as vault-k8s does. */
function fileName(g: FileGroup, ctx: Context): { name: string } | { reason: string } {
  if (g.keys['agent-inject-file'] !== undefined) {
    const name = g.keys['agent-inject-file'].replace(/^\/+/, '');
    if (!FILE_NAME.test(name) || name.includes('..') || name.startsWith('.'))
      return {
        reason: `agent-inject-file "${name.slice(0, 80)}" is not one file name of [A-Za-z0-9_.-]: Sidekey writes its files in one directory`,
      };
    return { name };
  }
  const preserve = parseBool(g.keys['preserve-secret-case'] ?? ctx.pod.get('preserve-secret-case') ?? 'false');
  const name = preserve === true ? g.raw : g.raw.toLowerCase();
  return FILE_NAME.test(name) && !name.includes('..') ? { name } : { reason: `"${name}" is not a Sidekey file name` };
}

/** Why a file's annotations ask for something Sidekey cannot write, or undefined. */
function fileProblem(g: FileGroup, ctx: Context): string | undefined {
  if (g.keys['agent-inject-template-file'] !== undefined)
    return 'the template is a file in the agent image, which migrate cannot read: write it as agent-inject-template first';
  if (g.keys['agent-template-left-delim'] !== undefined || g.keys['agent-template-right-delim'] !== undefined)
    return 'custom template delimiters: rewrite the template with {{ }} first';
  const volume = g.keys['secret-volume-path'];
  if (volume !== undefined && volume.replace(/\/+$/, '') !== ctx.mountPath)
    return `its own secret-volume-path "${volume.slice(0, 80)}": Sidekey writes every file under one mount path (${ctx.mountPath})`;
  return undefined;
}

/** What the file holds: its template translated, or vault-k8s's default template over its secret path. */
function fileContent(g: FileGroup, name: string, ctx: Context): FileTranslation | { reason: string } {
  const template = g.keys['agent-inject-template'];
  const secret = g.keys['agent-inject-secret'];
  if (template !== undefined && template.trim() !== '') {
    const t = translateTemplate(template, name);
    return t.ok ? t.file : { reason: `its template cannot be expressed in Sidekey: ${t.reason}` };
  }
  if (secret !== undefined && secret.trim() !== '')
    return translateDefault(secret.trim().replace(/^\/+/, ''), ctx.defaultTemplate);
  return { reason: 'neither a secret path nor a template' };
}

interface TranslatedFile {
  /** The Sidekey file name. */
  readonly name: string;
  readonly set: [string, string][];
  readonly file: FileTranslation;
}

/** How a file is translated: its Sidekey annotations, or why it cannot be. */
function translateFile(g: FileGroup, ctx: Context): TranslatedFile | { reason: string } {
  const problem = fileProblem(g, ctx);
  if (problem !== undefined) return { reason: problem };
  const name = fileName(g, ctx);
  if ('reason' in name) return name;
  // The longest per-file key, template-<name>, must still fit the 63 characters of an annotation key's name.
  if (`template-${name.name}`.length > 63)
    return { reason: `the file name "${name.name}" is too long for a sidekey.io/template-<name> annotation key` };
  const file = fileContent(g, name.name, ctx);
  if ('reason' in file) return file;
  const ref = formatReference({ provider: 'vault', path: file.path, query: file.query, field: file.field });
  const set: [string, string][] = [[`secret-${name.name}`, ref]];
  if (file.template !== undefined) set.push([`template-${name.name}`, file.template]);
  if (file.format !== undefined) set.push([`format-${name.name}`, file.format]);
  return { name: name.name, set, file };
}

/** The one file mode of all agent-inject-perms-<name>, or why there is none. */
function fileMode(perms: readonly string[]): { mode?: string } | { reason: string } {
  const modes = [...new Set(perms.map((p) => p.replace(/^0o?/, '').padStart(3, '0')))];
  if (modes.length === 0) return {};
  if (modes.length > 1)
    return {
      reason: `the files ask for different modes (${modes.map((m) => `0${m}`).join(', ')}): Sidekey gives every file one mode (sidekey.io/file-mode)`,
    };
  const mode = modes[0] ?? '';
  if (!/^[0-7]{3}$/.test(mode)) return { reason: `"${perms[0] ?? ''}" is not an octal file mode` };
  if ((Number.parseInt(mode, 8) & 0o111) !== 0)
    return { reason: `0${mode} has execute bits: Sidekey files are data, at most 0444` };
  return { mode: `0${mode}` };
}

type PodHandler = (value: string, ctx: Context, out: Results, key: string) => void;

function boolHandler(to: (on: boolean) => readonly (readonly [string, string])[]): PodHandler {
  return (value, _ctx, out, key) => {
    const on = parseBool(value);
    if (on === undefined) out.untranslated(key, `"${value.slice(0, 40)}" is not a boolean`);
    else out.translated(key, to(on));
  };
}

/** The pod-wide annotations that take more than a rename. */
const POD_HANDLERS: Readonly<Record<string, PodHandler>> = {
  'agent-inject': boolHandler((on) => [['inject', String(on)]]),
  'agent-pre-populate-only': boolHandler((on) => (on ? [['mode', 'init-only']] : [])),
  'auth-path': (value, _ctx, out, key) => {
    const path = value.replace(/\/+$/, '');
    if (path.startsWith('auth/') && path.length > 5) out.translated(key, [['vault-auth-path', path.slice(5)]]);
    else out.untranslated(key, `"${value.slice(0, 80)}" is not an auth/<mount> path`);
  },
  'auth-type': (value, _ctx, out, key) => {
    if (value === 'kubernetes') out.translated(key, [['vault-auth', 'kubernetes']]);
    else
      out.untranslated(
        key,
        `auth-type "${value.slice(0, 40)}" needs its auth-config-* parameters: set sidekey.io/vault-auth (kubernetes, jwt or approle) by hand`,
      );
  },
  'log-level': (value, _ctx, out, key) => {
    const level = value === 'trace' ? 'debug' : value === 'warning' ? 'warn' : value;
    if (['debug', 'info', 'warn', 'error'].includes(level))
      out.translated(key, [['log-level', level]], level === value ? [] : [`${value} became ${level}`]);
    else
      out.untranslated(key, `log level "${value.slice(0, 40)}" has no Sidekey counterpart (error, warn, info, debug)`);
  },
  'secret-volume-path': (_value, ctx, out, key) => {
    out.translated(key, [['mount-path', ctx.mountPath]]);
  },
  'tls-secret': (_value, ctx, out, key) => {
    translateCa(key, ctx, out);
  },
  'ca-cert': (_value, ctx, out, key) => {
    translateCa(key, ctx, out);
  },
};

/** Translates the pod-wide annotations that are not files. */
function translatePod(ctx: Context, out: Results): void {
  for (const [key, value] of ctx.pod) {
    const handler = POD_HANDLERS[key];
    const renamed = RENAMED[key];
    const notNeeded = NOT_NEEDED[key];
    if (handler !== undefined) handler(value, ctx, out, key);
    else if (renamed !== undefined) out.translated(key, [[renamed, value]]);
    else if (notNeeded !== undefined) out.translated(key, [], [notNeeded]);
    else {
      const reason =
        NO_EQUIVALENT[key] ?? Object.entries(NO_EQUIVALENT).find(([k]) => k.endsWith('-') && key.startsWith(k))?.[1];
      out.untranslated(key, reason ?? 'no Sidekey equivalent');
    }
  }
}

/** tls-secret + ca-cert under /vault/tls: the CA key of that Secret, mounted into the Sidekey agent only. */
function translateCa(key: string, ctx: Context, out: Results): void {
  const secret = ctx.pod.get('tls-secret');
  const caCert = ctx.pod.get('ca-cert');
  const caKey = caCert === undefined ? undefined : /^\/vault\/tls\/([A-Za-z0-9_.-]+)$/.exec(caCert)?.[1];
  if (secret !== undefined && caKey !== undefined) {
    out.translated(key, [['vault-ca', `secret:${secret}#${caKey}`]]);
  } else if (caCert === undefined) {
    out.untranslated(
      key,
      'tls-secret without ca-cert: Sidekey reads only a CA from it; name the key with sidekey.io/vault-ca: "secret:<name>#<key>"',
    );
  } else {
    out.untranslated(
      key,
      `ca-cert "${caCert.slice(0, 80)}" is not a file of the tls-secret (/vault/tls/<key>): put the CA in a ConfigMap or Secret and set sidekey.io/vault-ca`,
    );
  }
}

const COMMAND_REASON =
  'Sidekey runs no command: reload the app with sidekey.io/reload ("signal:SIGHUP" or "http:http://127.0.0.1:<port>/<path>")';

/** Records the per-file annotations of a translated file; the perms ones are gathered for one file mode. */
function recordFile(
  g: FileGroup,
  result: TranslatedFile,
  ctx: Context,
  out: Results,
  perms: Map<string, string>,
): void {
  for (const kind of Object.keys(g.keys) as FileKey[]) {
    const key = `${kind}-${g.raw}`;
    if (kind === 'agent-inject-secret' || kind === 'agent-inject-template') {
      // The template names what it reads: the secret annotation beside it adds nothing.
      const main = kind === 'agent-inject-template' || g.keys['agent-inject-template'] === undefined;
      out.translated(key, main ? result.set : [], main ? result.file.notes : []);
    } else if (kind === 'agent-inject-command') out.untranslated(key, COMMAND_REASON);
    else if (kind === 'agent-inject-perms') perms.set(key, g.keys[kind] ?? '');
    else {
      const note =
        kind === 'agent-inject-file'
          ? `the file name of ${ANNOTATION_PREFIX}${result.set[0]?.[0] ?? ''}`
          : kind === 'secret-volume-path'
            ? `the pod's mount path ${ctx.mountPath}`
            : (NOT_NEEDED[kind] ?? '');
      out.translated(key, [], [note]);
    }
  }
}

/** Each file translated, its certificates checked together as admission checks them. */
function translateAll(
  files: ReadonlyMap<string, FileGroup>,
  ctx: Context,
): Map<FileGroup, TranslatedFile | { reason: string }> {
  const results = new Map([...files.values()].map((g) => [g, translateFile(g, ctx)] as const));
  const translated = new Map<string, FileTranslation>();
  for (const r of results.values()) if (!('reason' in r)) translated.set(r.name, r.file);
  const checks = checkCertificates(translated);
  for (const [g, r] of results) {
    const check = 'reason' in r ? undefined : checks.get(r.name);
    if (check === undefined || 'reason' in r) continue;
    results.set(g, 'reason' in check ? check : { ...r, file: { ...r.file, notes: [...r.file.notes, check.note] } });
  }
  return results;
}

/** Translates the files; whether any was. */
function translateFiles(files: ReadonlyMap<string, FileGroup>, ctx: Context, out: Results): boolean {
  const perms = new Map<string, string>();
  let anyFile = false;
  for (const [g, result] of translateAll(files, ctx)) {
    if ('reason' in result) {
      for (const kind of Object.keys(g.keys)) out.untranslated(`${kind}-${g.raw}`, `file "${g.raw}": ${result.reason}`);
      continue;
    }
    anyFile = true;
    recordFile(g, result, ctx, out, perms);
  }
  const mode = fileMode([...perms.values()]);
  for (const key of perms.keys()) {
    if ('reason' in mode) out.untranslated(key, mode.reason);
    else
      out.translated(
        key,
        [['file-mode', mode.mode ?? '']],
        perms.size < files.size ? ['sidekey.io/file-mode applies to every file'] : [],
      );
  }
  return anyFile;
}

function contextOf(pod: ReadonlyMap<string, string>, defaultTemplate: DefaultTemplate): Context {
  const podDefault = pod.get('agent-inject-default-template');
  return {
    pod,
    mountPath: (pod.get('secret-volume-path') ?? VAULT_K8S_MOUNT).replace(/\/+$/, '') || VAULT_K8S_MOUNT,
    defaultTemplate: podDefault === 'json' || podDefault === 'map' ? podDefault : defaultTemplate,
  };
}

/**
 * Translates the vault-k8s annotations among `annotations` (a pod's, or a pod template's); undefined when it has
 * none. `defaultTemplate` is the injector's default for bare secrets, unless the pod names its own.
 */
export function migrateAnnotations(
  annotations: Readonly<Record<string, string>>,
  defaultTemplate: DefaultTemplate,
): PodMigration | undefined {
  const own = new Map<string, string>();
  for (const [key, value] of Object.entries(annotations))
    if (key.startsWith(VAULT_PREFIX)) own.set(key.slice(VAULT_PREFIX.length), value);
  if (own.size === 0) return undefined;
  const { files, pod } = group(own);
  const ctx = contextOf(pod, defaultTemplate);
  const out = new Results(annotations);
  const anyFile = translateFiles(files, ctx, out);
  // With no file translated the pod stays with vault-k8s, which needs every one of its pod-wide annotations,
  // unless an earlier run moved it to Sidekey already.
  if (anyFile || annotations[INJECT] !== undefined) translatePod(ctx, out);
  else
    for (const key of pod.keys())
      out.untranslated(key, "none of the pod's files could be translated, so the pod stays with vault-k8s");
  // The app keeps reading where vault-k8s wrote: the Sidekey mount goes to the same path.
  const mountPath = `${ANNOTATION_PREFIX}mount-path`;
  if (anyFile && !out.add.some(([k]) => k === mountPath) && annotations[mountPath] === undefined)
    out.add.push([mountPath, ctx.mountPath]);
  // sidekey.io/inject first, as people write it.
  const add = [...out.add].sort(([a], [b]) => Number(b === INJECT) - Number(a === INJECT));
  return { add, remove: out.remove, results: out.results };
}
