// The secret reference grammar shared by admission (validation) and the agent (fetching):
//   <provider>:<path>[#<field>][@<version>]
// aws:prod/db#password, aws:arn:aws:secretsmanager:us-east-1:123:secret:prod/db-AbCdEf, aws:prod/db@AWSPREVIOUS,
// vault:secret/payments/db#password, vault:database/creds/readonly, file:payments/db#password

export const PROVIDERS = ['aws', 'vault', 'file'] as const;
export type Provider = (typeof PROVIDERS)[number];

export interface SecretReference {
  readonly provider: Provider;
  readonly path: string;
  readonly field?: string;
  readonly version?: string;
}

export type ReferenceResult =
  | { readonly ok: true; readonly ref: SecretReference }
  | { readonly ok: false; readonly problem: string };

const PATH_CHARS = /^[A-Za-z0-9_.+=,:/-]+$/;
const FIELD_CHARS = /^[A-Za-z0-9_.-]+$/;
const VERSION_CHARS = /^[A-Za-z0-9_-]{1,64}$/;

function fail(problem: string): ReferenceResult {
  return { ok: false, problem };
}

function checkPath(provider: Provider, path: string): string | undefined {
  if (path === '') return 'the path is empty';
  if (path.length > 512) return 'the path is longer than 512 characters';
  if (!PATH_CHARS.test(path)) return 'the path has characters outside A-Z a-z 0-9 _ . + = , : / -';
  if (path.startsWith('/') || path.endsWith('/')) return 'the path must not start or end with "/"';
  if (provider !== 'aws' && path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    return 'the path has an empty, "." or ".." segment';
  }
  return undefined;
}

/** Parses a reference; the problem text never repeats the input, so it is safe to show anywhere. */
export function parseReference(text: string): ReferenceResult {
  const colon = text.indexOf(':');
  if (colon <= 0) return fail('it has no "<provider>:" prefix (providers: aws, vault, file)');
  const provider = text.slice(0, colon);
  if (!(PROVIDERS as readonly string[]).includes(provider)) {
    const shown = /^[a-z0-9-]{1,20}$/.test(provider) ? ` "${provider}"` : '';
    return fail(`unknown provider${shown} (providers: aws, vault, file)`);
  }
  let rest = text.slice(colon + 1);
  let version: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    version = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!VERSION_CHARS.test(version)) return fail('the @version is empty or not [A-Za-z0-9_-], at most 64');
    if (provider === 'file') return fail('the file provider has no versions; drop "@…"');
    if (provider === 'vault' && !/^\d+$/.test(version)) return fail('a vault @version must be a KV v2 version number');
  }
  let field: string | undefined;
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    field = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
    if (!FIELD_CHARS.test(field) || field.length > 128) return fail('the #field is empty or not [A-Za-z0-9_.-]');
  }
  const problem = checkPath(provider as Provider, rest);
  if (problem !== undefined) return fail(problem);
  const ref: SecretReference = {
    provider: provider as Provider,
    path: rest,
    ...(field === undefined ? {} : { field }),
    ...(version === undefined ? {} : { version }),
  };
  return { ok: true, ref };
}

/** The reference written back as text (for logs and metrics: it names a path, never a value); also takes the agent config's `ref`. */
export function formatReference(ref: { readonly provider: Provider; readonly path: string; readonly field?: string | undefined; readonly version?: string | undefined }): string {
  return `${ref.provider}:${ref.path}${ref.field === undefined ? '' : `#${ref.field}`}${ref.version === undefined ? '' : `@${ref.version}`}`;
}

/**
 * Vault backends that answer about the caller rather than hold secrets an app reads: auth/ (auth/token/lookup-self
 * returns the agent's own token), sys/ (the server's state, the token's policies, wrapping) and identity/ (every
 * token may read its own entity; identity/oidc/token/<role> mints a signed identity token). cubbyhole/ is not one:
 * it is private to the token, and the agent's token is new at each login and holds nothing there.
 */
export const VAULT_SYSTEM_MOUNTS: readonly string[] = ['auth', 'sys', 'identity'];

/**
 * The system backend a Vault path can reach, if any. With namespaces (Vault Enterprise, OpenBao) any leading
 * segments can name a namespace, nested ones too, and `<namespace>/sys/...` is that namespace's sys backend, so
 * every segment but the last counts, wherever it stands; the last cannot, since a backend answers only a path
 * under its mount. So `team-a/sys/health` is one, `secret/app/sys` (a key named sys) is not.
 */
export function vaultSystemMount(path: string): string | undefined {
  const segments = path.split('/');
  return segments.slice(0, -1).find((s) => VAULT_SYSTEM_MOUNTS.includes(s));
}
