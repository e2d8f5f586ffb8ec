// The agent configuration contract (env SIDEKEY_CONFIG): built by the webhook, parsed by the agent, printed
// by `sidekey render`. One zod schema, versioned; both sides parse with it, so a mismatch fails loudly.
// Written with zod/mini: the agent loads this module at start, and classic zod's import and per-schema methods
// cost it ~11 MiB of private memory and ~70 ms (zod/mini: ~1 MiB). Same validation, same English messages.
import { en } from 'zod/locales';
import * as z from 'zod/mini';
import { PROVIDERS } from './providers/names.ts';
import { MAX_CA_PEM_BYTES } from './vault-ca.ts';

z.config(en());

export const AGENT_CONFIG_VERSION = 1;

export const OUTPUT_FORMATS = ['raw', 'json', 'yaml', 'env', 'properties'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const MODES = ['sidecar', 'init-only'] as const;
export type Mode = (typeof MODES)[number];
/**
 * Why `classic` (init container plus regular sidecar, for clusters before native sidecars) is refused, and what
 * to use instead: the chart requires Kubernetes 1.30, and every cluster from 1.29 on runs native sidecars.
 */
export const CLASSIC_REMOVED =
  'classic mode was removed: Sidekey needs native sidecars (Kubernetes 1.29+); use sidecar (the default), or init-only for Jobs';

export const VAULT_AUTH_METHODS = ['kubernetes', 'jwt', 'approle', 'token'] as const;

/** An AWS region name, e.g. eu-west-1 (annotations, webhook settings and the agent config all take this form). */
export const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/**
 * A Vault auth mount path without `auth/`: segments of [A-Za-z0-9_.-] not starting with a dot, so no `.` or
 * `..` segment takes the login URL out of /v1/auth/.
 */
export const VAULT_AUTH_PATH = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*(\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$/;

/** Files one agent writes. */
export const MAX_FILES = 500;

/** The file name rule: one path segment, no leading dot (names starting ".." are the writer's own). */
export const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$/;

const referenceSchema = z.strictObject({
  provider: z.enum(PROVIDERS),
  path: z.string().check(z.minLength(1), z.maxLength(512)),
  /** Canonical `k=v&…` parameters of a write (a Vault PKI issue). */
  query: z.optional(z.string().check(z.minLength(1), z.maxLength(2048))),
  field: z.optional(z.string().check(z.minLength(1), z.maxLength(128))),
  version: z.optional(z.string().check(z.minLength(1), z.maxLength(64))),
});

const fileSchema = z.strictObject({
  /** Output file name under the secrets directory. */
  name: z.string().check(z.regex(FILE_NAME)),
  ref: referenceSchema,
  /** Output format; absent means raw for one field and json for a whole object. */
  format: z.optional(z.enum(OUTPUT_FORMATS)),
  /** `{{ .field }}` template; when set it replaces format. */
  template: z.optional(z.string().check(z.maxLength(65_536))),
  /** Refresh interval in ms; absent means the provider default (1h AWS and file-watch, lease-driven Vault dynamic). */
  refreshMs: z.optional(z.int().check(z.positive())),
});
export type FileSpec = z.infer<typeof fileSchema>;

const reloadSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('none') }),
  /** Signal the main process of `container` (found by RELOAD_TARGET_ENV in the shared PID namespace). */
  z.strictObject({
    kind: z.literal('signal'),
    signal: z.string().check(z.regex(/^SIG[A-Z0-9]+$/)),
    container: z.string().check(z.minLength(1)),
  }),
  /** POST to a loopback URL. */
  z.strictObject({ kind: z.literal('http'), url: z.url() }),
]);
export type ReloadSpec = z.infer<typeof reloadSchema>;

const vaultSchema = z.strictObject({
  addr: z.url(),
  auth: z.enum(VAULT_AUTH_METHODS),
  /** Auth mount path without the `auth/` prefix, e.g. `kubernetes`. */
  authPath: z.string().check(z.maxLength(128), z.regex(VAULT_AUTH_PATH)),
  role: z.optional(z.string().check(z.minLength(1))),
  namespace: z.optional(z.string().check(z.minLength(1))),
  /** PEM file of a CA that signs the Vault server certificate (a mounted ConfigMap or Secret key). */
  caFile: z.optional(z.string().check(z.minLength(1))),
  /** The same as PEM text (the webhook's vault.caCert); caFile wins when both are set. */
  caCert: z.optional(z.string().check(z.minLength(1), z.maxLength(MAX_CA_PEM_BYTES))),
  /** JWT for kubernetes/jwt auth, token for token auth; re-read at every login. */
  tokenFile: z.optional(z.string().check(z.minLength(1))),
  /** approle: files holding the role id and secret id; re-read at every login. */
  roleIdFile: z.optional(z.string().check(z.minLength(1))),
  secretIdFile: z.optional(z.string().check(z.minLength(1))),
});
export type VaultSettings = z.infer<typeof vaultSchema>;

const awsSchema = z.strictObject({
  region: z.string().check(z.regex(AWS_REGION)),
});

/** Levels a pod may ask its agent to log at (sidekey.io/log-level; the agent reads env SIDEKEY_LOG_LEVEL). */
export const AGENT_LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export const LOG_LEVEL_ENV = 'SIDEKEY_LOG_LEVEL';

export const agentConfigSchema = z.strictObject({
  version: z.literal(AGENT_CONFIG_VERSION),
  mode: z.enum(MODES),
  /** `init` writes once and exits; `run` writes, passes /startup and keeps refreshing. */
  role: z.enum(['init', 'run']),
  /** The shared tmpfs directory the files go to (the agent's mount of the secrets volume). */
  secretsDir: z.string().check(z.startsWith('/')),
  /** Port of /healthz, /readyz, /startup, /metrics. */
  port: z.int().check(z.gte(1), z.lte(65_535)),
  /** File mode of written files, e.g. 0o400. */
  fileMode: z.int().check(z.gte(0), z.lte(0o777)),
  /** When set, files are given this group (the pod's fsGroup; the agent is a member, so no capability is needed). */
  fileGroup: z.optional(z.int().check(z.gte(0))),
  files: z.array(fileSchema).check(z.minLength(1), z.maxLength(MAX_FILES)),
  reload: reloadSchema,
  /** A secret older than this (ms since its last good fetch) makes /readyz fail. */
  staleAfterMs: z.optional(z.int().check(z.positive())),
  /** init role: how long to retry the first fetch before exiting non-zero. */
  initTimeoutMs: z.optional(z.int().check(z.positive())),
  aws: z.optional(awsSchema),
  vault: z.optional(vaultSchema),
});

export type AgentConfig = z.infer<typeof agentConfigSchema>;

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** Parses SIDEKEY_CONFIG text; the error names fields, never values. */
export function parseAgentConfig(text: string): ParseResult<Readonly<AgentConfig>> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, error: 'SIDEKEY_CONFIG is not valid JSON' };
  }
  const parsed = agentConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { ok: false, error: `SIDEKEY_CONFIG is invalid: ${issues.join('; ')}` };
  }
  return { ok: true, value: deepFreeze(parsed.data) };
}

/** Freezes parsed configuration all the way down (shared by every config parser). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
