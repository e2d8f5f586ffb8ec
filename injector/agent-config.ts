// The agent configuration contract (env SIDEKEY_CONFIG): built by the webhook, parsed by the agent, printed
// by `sidekey render`. One zod schema, versioned; both sides parse with it, so a mismatch fails loudly.
import { z } from 'zod';
import { PROVIDERS } from './reference.ts';

export const AGENT_CONFIG_VERSION = 1;

export const OUTPUT_FORMATS = ['raw', 'json', 'yaml', 'env', 'properties'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const MODES = ['sidecar', 'init-only', 'classic'] as const;
export type Mode = (typeof MODES)[number];

export const VAULT_AUTH_METHODS = ['kubernetes', 'jwt', 'approle', 'token'] as const;

/** The file name rule: one path segment, no leading dot (names starting ".." are the writer's own). */
export const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$/;

const referenceSchema = z.strictObject({
  provider: z.enum(PROVIDERS),
  path: z.string().min(1).max(512),
  field: z.string().min(1).max(128).optional(),
  version: z.string().min(1).max(64).optional(),
});

const fileSchema = z.strictObject({
  /** Output file name under the secrets directory. */
  name: z.string().regex(FILE_NAME),
  ref: referenceSchema,
  /** Output format; absent means raw for one field and json for a whole object. */
  format: z.enum(OUTPUT_FORMATS).optional(),
  /** `{{ .field }}` template; when set it replaces format. */
  template: z.string().max(65_536).optional(),
  /** Refresh interval in ms; absent means the provider default (1h AWS and file-watch, lease-driven Vault dynamic). */
  refreshMs: z.number().int().positive().optional(),
});
export type FileSpec = z.infer<typeof fileSchema>;

const reloadSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('none') }),
  /** Signal the main process of `container` (found by RELOAD_TARGET_ENV in the shared PID namespace). */
  z.strictObject({ kind: z.literal('signal'), signal: z.string().regex(/^SIG[A-Z0-9]+$/), container: z.string().min(1) }),
  /** POST to a loopback URL. */
  z.strictObject({ kind: z.literal('http'), url: z.url() }),
]);
export type ReloadSpec = z.infer<typeof reloadSchema>;

const vaultSchema = z.strictObject({
  addr: z.url(),
  auth: z.enum(VAULT_AUTH_METHODS),
  /** Auth mount path without the `auth/` prefix, e.g. `kubernetes`. */
  authPath: z.string().min(1),
  role: z.string().min(1).optional(),
  namespace: z.string().min(1).optional(),
  /** PEM file of a CA that signs the Vault server certificate. */
  caFile: z.string().min(1).optional(),
  /** JWT for kubernetes/jwt auth, token for token auth; re-read at every login. */
  tokenFile: z.string().min(1).optional(),
  /** approle: files holding the role id and secret id; re-read at every login. */
  roleIdFile: z.string().min(1).optional(),
  secretIdFile: z.string().min(1).optional(),
});
export type VaultSettings = z.infer<typeof vaultSchema>;

const awsSchema = z.strictObject({
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/),
});

export const agentConfigSchema = z.strictObject({
  version: z.literal(AGENT_CONFIG_VERSION),
  mode: z.enum(MODES),
  /** `init` writes once and exits; `run` writes, passes /startup and keeps refreshing. */
  role: z.enum(['init', 'run']),
  /** The shared tmpfs directory the files go to (the agent's mount of the secrets volume). */
  secretsDir: z.string().startsWith('/'),
  /** Agent-private state (classic mode hand-over from init to sidecar); never mounted into apps. */
  stateDir: z.string().startsWith('/').optional(),
  /** Port of /healthz, /readyz, /startup, /metrics. */
  port: z.number().int().min(1).max(65_535),
  /** File mode of written files, e.g. 0o400. */
  fileMode: z.number().int().min(0).max(0o777),
  /** When set, files are given this group (the pod's fsGroup; the agent is a member, so no capability is needed). */
  fileGroup: z.number().int().min(0).optional(),
  files: z.array(fileSchema).min(1).max(500),
  reload: reloadSchema,
  /** A secret older than this (ms since its last good fetch) makes /readyz fail. */
  staleAfterMs: z.number().int().positive().optional(),
  /** init role: how long to retry the first fetch before exiting non-zero. */
  initTimeoutMs: z.number().int().positive().optional(),
  aws: awsSchema.optional(),
  vault: vaultSchema.optional(),
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
