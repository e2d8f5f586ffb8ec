// Maps failed Vault/OpenBao calls to stable ProviderError codes. Messages carry the path and Vault's own error
// text (which names paths and policies, never secret data), never the transport error object.
import type { Logger } from 'pino';
import { ProviderError, type ProviderErrorCode } from '../../../agent/provider.ts';
import { tlsVerifyFailure } from '../../../agent/providers/tls-errors.ts';
import { VaultCallError } from './vault-client.ts';

const TRUST_FIX =
  "give the agent the Vault CA (the webhook's vault.caCert or vault.caFrom, or sidekey.io/vault-ca on the pod)";

/** The code for an HTTP answer (0: none at all); `login` marks answers to the login itself. */
function codeOf(status: number, login: boolean): ProviderErrorCode {
  if (status === 0) return 'UNAVAILABLE';
  if (status === 200) return 'BAD_RESPONSE';
  if (login && (status === 400 || status === 401 || status === 403)) return 'AUTH_FAILED';
  if (status === 403) return 'PERMISSION_DENIED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 429) return 'THROTTLED';
  // 412: a performance standby has not caught up yet; 5xx: sealed, standby, or down.
  if (status === 412 || status >= 500) return 'UNAVAILABLE';
  return 'CONFIG';
}

/** Maps an error from a data call (read, renew); `login` marks errors of the login itself. */
export function fromVaultError(error: unknown, login = false): ProviderError {
  if (error instanceof ProviderError) return error;
  if (!(error instanceof VaultCallError)) {
    return new ProviderError(
      'BAD_RESPONSE',
      `vault: unexpected failure (${error instanceof Error ? error.name : typeof error})`,
    );
  }
  const { status, message } = error;
  const tls = error.network === undefined ? undefined : tlsVerifyFailure(error.network, TRUST_FIX);
  if (tls !== undefined)
    return new ProviderError('TLS_VERIFY_FAILED', `${message.replace(/: no answer \([^)]*\)$/, '')}: ${tls}`);
  return new ProviderError(codeOf(status, login), message);
}

/** sys/leases/renew answers 400 for a lease that is gone, expired or not renewable: the caller fetches anew. */
export function leaseGone(error: unknown): boolean {
  return error instanceof VaultCallError && (error.status === 400 || error.status === 404);
}

/** A best-effort revoke at shutdown: a failure is logged by its code, never thrown. */
export async function revokeQuietly(log: Logger, what: 'lease' | 'token', call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    log.warn({ code: fromVaultError(error).code, what }, 'vault revoke failed');
  }
}
