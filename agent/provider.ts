// The one interface every backend (aws, vault, file) implements. The refresh loop only sees this.
import type { Logger } from 'pino';
import type { AgentConfig } from '../injector/agent-config.ts';
import type { Provider, SecretReference } from '../injector/reference.ts';
import { CodedError } from './coded-error.ts';

/** A fetched secret before field selection and formatting (done by the renderer). */
export type SecretValue =
  | { readonly kind: 'object'; readonly value: Readonly<Record<string, unknown>> }
  | { readonly kind: 'text'; readonly value: string }
  | { readonly kind: 'binary'; readonly value: Uint8Array };

/** A Vault lease (dynamic secrets). */
export interface Lease {
  readonly id: string;
  readonly durationMs: number;
  readonly renewable: boolean;
  /** Epoch ms when the lease was issued or last renewed. */
  readonly renewedAt: number;
  /** Epoch ms when the lease was first issued (max TTL is counted from here). */
  readonly issuedAt: number;
}

export interface Fetched {
  readonly value: SecretValue;
  /** Backend version (AWS VersionId, KV v2 version, lease id, content hash): change detection. */
  readonly version: string;
  /**
   * The backend's version when it names one that reveals nothing of the value (AWS VersionId, KV v2 version), for
   * /status. Left out when `version` is a content hash (a fingerprint of the value) or a lease id.
   */
  readonly displayVersion?: string;
  readonly lease?: Lease;
  /**
   * Epoch ms when the value stops being valid (a certificate's notAfter): the refresh loop fetches it anew at about
   * 2/3 of the time left, whatever the refresh interval.
   */
  readonly expiresAt?: number;
}

/** Stable error codes: they name what failed (for metrics and the troubleshooting table), never a value. */
export type ProviderErrorCode =
  | 'AUTH_FAILED'
  | 'PERMISSION_DENIED'
  | 'NOT_FOUND'
  | 'THROTTLED'
  | 'UNAVAILABLE'
  | 'TLS_VERIFY_FAILED'
  | 'BAD_RESPONSE'
  | 'FIELD_MISSING'
  | 'LEASE_EXPIRED'
  | 'ISSUE_REFUSED'
  | 'CONFIG';

/**
 * A failed fetch, renewal or login. There is no retryable flag: the refresh loop retries every failure with the
 * same backoff, since what a backend refuses (a missing secret, a denied policy) is fixed outside the agent and
 * must be picked up soon after; transport retries happen inside the providers.
 */
export class ProviderError extends CodedError<ProviderErrorCode> {
  override readonly name = 'ProviderError';
}

export type FetchOutcome =
  | { readonly ok: true; readonly ref: SecretReference; readonly fetched: Fetched }
  | { readonly ok: false; readonly ref: SecretReference; readonly error: ProviderError };

export interface SecretProvider {
  readonly name: Provider;
  /** Fetches many references in as few backend calls as the backend allows; one outcome per reference, same order. */
  fetchMany(refs: readonly SecretReference[]): Promise<readonly FetchOutcome[]>;
  /** Renews a lease; returns the renewed lease (its durationMs may shrink near max TTL). */
  renewLease?(lease: Lease): Promise<Lease>;
  /** Revokes leases and the provider's own token (optional shutdown clean-up). */
  revoke?(leases: readonly Lease[]): Promise<void>;
  /** Calls onChange when the backend signals a change itself (the file store's watcher). Returns an unsubscribe. */
  watch?(onChange: () => void): () => void;
  close(): Promise<void>;
}

/** What the agent hands a provider factory. Providers get their settings from config.aws / config.vault. */
export interface ProviderDeps {
  readonly config: Readonly<AgentConfig>;
  /** The process environment (AWS credential chain, endpoint overrides, SIDEKEY_FILE_STORE). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Already bound to `provider` by the agent: a provider adds no binding of its own (pino would repeat the key). */
  readonly log: Logger;
  readonly now: () => number;
  /** Counts one backend API call (for the backend-calls-by-operation metric), e.g. ('aws', 'BatchGetSecretValue'). */
  readonly countCall: (provider: Provider, operation: string) => void;
}

/** Each module providers/<name>/agent/<name>.ts exports `createProvider` of this type; the agent imports it lazily. */
export type ProviderFactory = (deps: ProviderDeps) => SecretProvider | Promise<SecretProvider>;
