// The secret reference grammar shared by admission (validation, reference-parse.ts) and the agent (fetching):
//   <provider>:<path>[?<parameters>][#<field>][@<version>]
// aws:prod/db#password, aws:arn:aws:secretsmanager:us-east-1:123:secret:prod/db-AbCdEf, aws:prod/db@AWSPREVIOUS,
// vault:secret/payments/db#password, vault:database/creds/readonly, file:payments/db#password,
// vault:pki/issue/web?common_name=web.app.svc&ttl=24h#certificate (parameters: only where a provider takes them)

import type { Provider } from './providers/names.ts';

export type { Provider };

export interface SecretReference {
  readonly provider: Provider;
  readonly path: string;
  /**
   * Parameters of a write such as a Vault PKI issue, canonical (`k=v` pairs sorted by key, joined by `&`): part of
   * what is fetched, so references that differ only in their order share one fetch.
   */
  readonly query?: string;
  readonly field?: string;
  readonly version?: string;
}

/**
 * The reference written back as text (for logs and metrics: it names a path, never a value); also takes the agent
 * config's `ref`.
 */
export function formatReference(ref: {
  readonly provider: Provider;
  readonly path: string;
  readonly query?: string | undefined;
  readonly field?: string | undefined;
  readonly version?: string | undefined;
}): string {
  return `${ref.provider}:${ref.path}${ref.query === undefined ? '' : `?${ref.query}`}${ref.field === undefined ? '' : `#${ref.field}`}${ref.version === undefined ? '' : `@${ref.version}`}`;
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
